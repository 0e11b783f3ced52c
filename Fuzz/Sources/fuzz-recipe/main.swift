import FuzzSupport
import LucidRestore

/// Recipes and `--set` overrides: the input is YAML, optionally followed by a line `%%` and one
/// `key.path=value` override per line. A recipe that parses must read back from the JSON that
/// checkpoints keep (what `--resume` does) to the same recipe.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecipe(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = Fuzz.scratch
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.components(separatedBy: "\n%%\n")
    let overrides = parts.dropFirst().joined(separator: "\n").split(separator: "\n").map(String.init)
    do {
        let recipe = try Recipe.parse(yaml: parts[0], file: "fuzz.yaml", overrides: overrides)
        let again = try Recipe.parse(yaml: recipe.json(), file: "lucid.json")
        precondition(again == recipe, "the recipe does not read back from its JSON:\n\(recipe.json())")
        _ = recipe.yaml()
    } catch {
        Fuzz.checkMessage(error)
    }
    return 0
}
