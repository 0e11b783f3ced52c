import Foundation

/// A line chart as inline SVG: axes with round-number ticks (or powers of ten on a log axis),
/// grid lines, one polyline per series (markers for sparse ones) and a legend.
struct SVGChart {
    struct Series {
        var name: String
        /// CSS colour of the line.
        var color: String
        var points: [(x: Double, y: Double)]
        var lineWidth: Double = 1.5
        var opacity: Double = 1
        /// Dots at the points (validations).
        var markers = false
    }

    var title: String
    var xLabel = "step"
    var series: [Series]
    /// Logarithmic y axis (used only when every value is positive).
    var logY = false
    var width = 560.0, height = 300.0
    /// Most points drawn per series; longer series are thinned evenly (ends kept).
    var maxPoints = 1500

    private let left = 64.0, right = 14.0, top = 30.0, bottom = 40.0

    func render() -> String {
        let drawn = series.map { s -> Series in
            var t = s
            t.points = SVGChart.thin(s.points.filter { $0.x.isFinite && $0.y.isFinite }, to: maxPoints)
            return t
        }
        let all = drawn.flatMap(\.points)
        let log = logY && !all.isEmpty && all.allSatisfy { $0.y > 0 }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" "
            + "viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(TrainingReport.escape(title))\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
        svg += "<text x=\"\(f(left))\" y=\"18\" font-size=\"14\" font-weight=\"600\">\(TrainingReport.escape(title))\(log ? " (log scale)" : "")</text>"
        guard let x0 = all.map(\.x).min(), let x1 = all.map(\.x).max() else {
            return svg + "<text x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\" fill=\"#888\">no data yet</text></svg>"
        }
        let ys = all.map { log ? Foundation.log10($0.y) : $0.y }
        var (y0, y1) = (ys.min()!, ys.max()!)
        if y1 - y0 < 1e-12 * max(1, abs(y1)) { y0 -= log ? 0.5 : max(abs(y0) * 0.1, 1e-6); y1 += log ? 0.5 : max(abs(y1) * 0.1, 1e-6) }
        let pad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - pad, y1 + pad)
        let xr = x1 > x0 ? (x0, x1) : (x0 - 1, x1 + 1)
        let (pw, ph) = (width - left - right, height - top - bottom)
        func px(_ x: Double) -> Double { left + (x - xr.0) / (xr.1 - xr.0) * pw }
        func py(_ y: Double) -> Double { top + (1 - ((log ? Foundation.log10(y) : y) - y0) / (y1 - y0)) * ph }

        // Grid and ticks.
        svg += "<g font-size=\"11\" fill=\"#555\" stroke-width=\"1\">"
        for t in SVGChart.ticks(xr.0, xr.1) {
            let x = px(t)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + ph))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(top + ph + 15))\" text-anchor=\"middle\">\(SVGChart.label(t))</text>"
        }
        let yTicks = log ? SVGChart.logTicks(y0, y1) : SVGChart.ticks(y0, y1)
        for t in yTicks {
            let y = py(t)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(SVGChart.label(t))</text>"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#999\"/>"
        svg += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">\(TrainingReport.escape(xLabel))</text></g>"

        // Lines, markers, legend.
        svg += "<g fill=\"none\" stroke-linejoin=\"round\">"
        for s in drawn where !s.points.isEmpty {
            let coords = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline points=\"\(coords)\" stroke=\"\(s.color)\" stroke-width=\"\(f(s.lineWidth))\" opacity=\"\(f(s.opacity))\"/>"
            if s.markers {
                for p in s.points { svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(s.color)\" stroke=\"none\"/>" }
            }
        }
        svg += "</g><g font-size=\"11\">"
        for (k, s) in drawn.enumerated() where s.opacity >= 1 {
            let y = top + 14 + Double(k) * 15, x = left + pw - 150
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(y - 4))\" x2=\"\(f(x + 18))\" y2=\"\(f(y - 4))\" stroke=\"\(s.color)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(f(x + 24))\" y=\"\(f(y))\">\(TrainingReport.escape(s.name))</text>"
        }
        return svg + "</g></svg>"
    }

    /// About five round ticks (1, 2 or 5 × 10ᵏ apart) within [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / 5, magnitude = pow(10, (Foundation.log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// Powers of ten (and 2·, 5· when at most three decades show) within [lo, hi] in log10 units.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let decades = Int(lo.rounded(.down))...Int(hi.rounded(.up))
        let multiples: [Double] = hi - lo <= 3 ? [1, 2, 5] : [1]
        return decades.flatMap { d in multiples.map { $0 * pow(10, Double(d)) } }.filter {
            let l = Foundation.log10($0)
            return l >= lo && l <= hi
        }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.0e", v) }
        return String(format: "%g", (v * 1e4).rounded() / 1e4)
    }

    /// At most `n` points, evenly spaced in index, first and last kept.
    static func thin(_ points: [(x: Double, y: Double)], to n: Int) -> [(x: Double, y: Double)] {
        guard points.count > n, n >= 2 else { return points }
        return (0..<n).map { points[$0 * (points.count - 1) / (n - 1)] }
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
