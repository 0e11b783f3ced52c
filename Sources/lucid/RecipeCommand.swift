import ArgumentParser
import Foundation
import LucidRestore

/// `lucid recipe FILE [--set key=value]...`: validates a training recipe and prints it resolved.
struct RecipeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipe",
        abstract: "Check a training recipe and print it with every default filled in.",
        discussion: """
        Errors name the file, the key path, the value and what is allowed, e.g. \
        recipe.yaml: model.depth: 0 is not allowed (an integer from 1 to 6) [line 7]. \
        Example recipes for every method are in the Recipes/ folder.
        """)

    @Argument(help: "The recipe (YAML).")
    var file: String?

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override a key before validation (repeatable); the value is YAML, e.g. data.patch=[32,64,64].",
        valueName: "key.path=value"))
    var overrides: [String] = []

    @Flag(help: "Print JSON instead of YAML.")
    var json = false

    @Flag(help: "Print the table of every recipe key (Markdown, as in Recipes/README.md) instead.")
    var keys = false

    func run() throws {
        if keys { return print(Recipe.keyTableMarkdown, terminator: "") }
        guard let file else { throw ValidationError("give a recipe file, or --keys for the table of keys") }
        let recipe = try Recipe.load(path: file, overrides: overrides)
        print(json ? recipe.json() : recipe.yaml(), terminator: "")
    }
}
