/// `s` as a JSON string literal (quotes, backslashes and control characters escaped), for the
/// hand-written JSON of safetensors headers and resolved recipes. The literal is also YAML that
/// reads back as `s`: characters YAML takes for line breaks (NEL, U+2028, U+2029) or does not
/// allow unescaped are escaped too.
public func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if needsEscapeInJSONOrYAML(u) {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// True for the characters `jsonQuoted` writes as `\uXXXX`: C0 and C1 controls (NEL, U+0085,
/// is a line break to YAML), DEL, the line and paragraph separators and the byte-order mark.
public func needsEscapeInJSONOrYAML(_ u: Unicode.Scalar) -> Bool {
    u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029 || u.value == 0xFEFF
}
