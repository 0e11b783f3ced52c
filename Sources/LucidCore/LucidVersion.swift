/// Lucid's version: written into checkpoints, wisdom files and exported models, and printed by
/// `lucid --version`.
public let lucidVersion = "0.2.0"
