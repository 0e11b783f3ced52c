import LucidCore

/// Engine cases of `lucid bench` (filled in by the engine work).
enum EngineBenchmarks {
    static var cases: [BenchCase] { [] }
}
