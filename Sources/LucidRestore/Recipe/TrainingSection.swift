import Foundation
import LucidNN

/// The `training:` section.
public struct TrainingRecipe: Equatable, Sendable {
    /// Total optimizer steps.
    public var steps = 4000
    /// Patches per step.
    public var batch = 16
    /// Initial learning rate.
    public var lr = 4e-4
    /// Seed for patch sampling, masking and initialization.
    public var seed = 0
    public var optimizer = OptimizerKind.adam
    /// L2 weight decay (decoupled for `adamw`).
    public var weightDecay = 0.0
    /// Momentum for `sgd`.
    public var momentum = 0.9
    /// Learning-rate schedule.
    public var schedule = LearningRateSchedule()
    /// Validate (and checkpoint the best model) every this many steps.
    public var validateEvery = 200
    /// When to stop for lack of improvement.
    public var earlyStopping = EarlyStopping()
    /// Clip the global gradient norm to this value; 0 disables clipping.
    public var clipNorm = 0.0

    public init() {}

    /// `training.early_stopping`.
    public struct EarlyStopping: Equatable, Sendable {
        /// Stop after this many validations without improvement; 0 never stops early.
        public var patience = 0
        /// Smallest validation-loss decrease that counts as improvement.
        public var minDelta = 0.0
        public init() {}
    }

    static let scheduleKeys: [RecipeKey<LearningRateSchedule>] = [
        .choice("kind", \.kind, default: "plateau (noise2self, noise2void, zeroshot: cosine; labelfree: none)",
                "none (constant), cosine (decay to 0), step (× factor every `every` steps), plateau (× factor after `patience` validations without improvement); `schedule: cosine` is short for `{kind: cosine}`"),
        .double("factor", \.factor, allowed: "a number > 0 and < 1", "decay factor of step and plateau") { $0 > 0 && $0 < 1 },
        .int("every", \.every, in: 1...100_000_000, "step interval of step"),
        .int("patience", \.patience, in: 1...100_000, "validations without improvement before plateau lowers the rate"),
        .int("warmup", \.warmup, in: 0...100_000_000, "linear warm-up steps before the schedule starts"),
    ]

    static let earlyStoppingKeys: [RecipeKey<EarlyStopping>] = [
        .int("patience", \.patience, in: 0...100_000, describe: "an integer ≥ 0 (0 never stops early)",
             "stop after this many validations without improvement (0: never); `early_stopping: 10` is short for `{patience: 10}`"),
        .double("min_delta", \.minDelta, allowed: "a number ≥ 0", "smallest validation-loss decrease that counts as improvement") { $0 >= 0 },
    ]

    /// The keys, in the order recipes list them.
    static let keys = SectionReader<TrainingRecipe>(keys: [
        .int("steps", \.steps, in: 1...100_000_000, default: "4000 (zeroshot: 1000)", "total optimizer steps"),
        .int("batch", \.batch, in: 1...65536, default: "16 (zeroshot: 4)", "patches per step"),
        .double("lr", \.lr, allowed: "a number > 0 and ≤ 1", default: "0.0004 (noise2self, noise2void, labelfree, zeroshot: 0.001)", "initial learning rate") {
            $0 > 0 && $0 <= 1
        },
        .int("seed", \.seed, in: 0...Int(Int32.max), "seed of patch sampling, masking and initialization"),
        RecipeKey("optimizer", allowed: "one of adam, adamw, sgd", default: "adam", "optimizer",
                  read: { t, r, _ in
                      t.optimizer = try r.choice("optimizer", default: t.optimizer)!
                      if t.optimizer == .adamw { t.weightDecay = 0.01 }
                  },
                  write: { .string($0.optimizer.rawValue) }),
        .double("weight_decay", \.weightDecay, allowed: "a number ≥ 0 and < 1", default: "0 (adamw: 0.01)",
                "L2 weight decay (decoupled for adamw)") { $0 >= 0 && $0 < 1 },
        .double("momentum", \.momentum, allowed: "a number ≥ 0 and < 1", "momentum of sgd") { $0 >= 0 && $0 < 1 },
        .section("schedule", \.schedule, keys: scheduleKeys,
                 what: "a schedule name or a mapping with kind, factor, every, patience, warmup",
                 summary: "learning-rate schedule: a kind, or a mapping",
                 shorthand: { node, r, schedule in
                     schedule = LearningRateSchedule(kind: try MapReader.choice(node, path: r.path + ["schedule"],
                                                                              among: LearningRateSchedule.Kind.allCases,
                                                                              context: r.context))
                 }),
        .int("validate_every", \.validateEvery, in: 1...100_000_000, "validate (and checkpoint the best weights) every this many steps"),
        .section("early_stopping", \.earlyStopping, keys: earlyStoppingKeys,
                 what: "a patience ≥ 0 or a mapping with patience, min_delta",
                 summary: "a patience, or a mapping",
                 shorthand: { node, r, early in
                     guard let v = RecipeContext.int(node), v >= 0 else {
                         throw r.context.notAllowed(r.path + ["early_stopping"], node,
                                                    "a patience ≥ 0 or a mapping with patience, min_delta")
                     }
                     early = EarlyStopping()
                     early.patience = v
                 }),
        .double("clip_norm", \.clipNorm, allowed: "a number ≥ 0 (0 disables clipping)",
                "clip the global gradient norm to this value") { $0 >= 0 },
    ])

    /// Reads the section from the method's defaults.
    static func read(_ t: MapReader, _ context: RecipeParseContext) throws -> TrainingRecipe {
        var initial = TrainingRecipe()
        let defaults = type(of: context.method).defaults
        initial.lr = defaults.learningRate
        initial.steps = defaults.steps
        initial.batch = defaults.batch
        initial.schedule.kind = defaults.schedule
        return try keys.read(initial, t, context)
    }
}
