import XCTest
@testable import LucidAutograd
@testable import LucidCore

final class GradientReadyTests: XCTestCase {
    /// `backward(gradientReady:)` reports every leaf once, with its final gradient, as soon as
    /// the last rule sending it one has run: the second layer's weight (used twice) before the
    /// first layer's rules run; the gradients are those of a plain `backward`.
    func testLeavesAreReportedWhenFinal() throws {
        let x = Variable(randomTensor([4, 3], seed: 1))
        let w1 = Variable(randomTensor([3, 5], seed: 2), requiresGrad: true)
        let w2 = Variable(randomTensor([5, 2], seed: 3), requiresGrad: true)
        var firstLayerRan = false
        func loss() throws -> Variable {
            let z = try matmul(x, w1)
            let marked = Variable.record(z.value, parents: [z], op: "mark") { g in
                firstLayerRan = true
                return [g]
            }
            let h = try relu(marked)
            return try (matmul(h, w2) + matmul(h, w2) * 0.5).sum()
        }
        var reported: [(leaf: Variable, grad: Tensor, firstLayerRan: Bool)] = []
        try loss().backward { leaf in reported.append((leaf, leaf.grad!, firstLayerRan)) }
        XCTAssertEqual(reported.count, 2)
        XCTAssertTrue(reported[0].leaf === w2 && reported[1].leaf === w1)
        XCTAssertFalse(reported[0].firstLayerRan, "w2 is reported before the first layer's rules run")
        for r in reported { XCTAssertEqual(r.grad.scalars, r.leaf.grad!.scalars, "reported gradients are final") }
        let (g1, g2) = (w1.grad!, w2.grad!)
        w1.zeroGrad()
        w2.zeroGrad()
        try loss().backward()
        XCTAssertEqual(g1.scalars, w1.grad!.scalars)
        XCTAssertEqual(g2.scalars, w2.grad!.scalars)
    }
}
