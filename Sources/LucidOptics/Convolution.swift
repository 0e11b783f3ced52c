import Foundation
import LucidCore

/// FFT convolution of images of one shape with one kernel (`same`-size output), and its adjoint.
///
/// The kernel spectrum is computed once. `apply` is `crop ∘ circular-conv ∘ pad`; `adjoint` is
/// its exact transpose (`fold ∘ circular-correlation ∘ zero-embed`), so
/// `⟨apply(x), y⟩ = ⟨x, adjoint(y)⟩` for every boundary.
/// ```swift
/// let h = try FFTConvolver(kernel: psf, imageShape: [64, 256, 256], boundary: .reflect)
/// let blurred = try h.apply(volume)
/// ```
public final class FFTConvolver: @unchecked Sendable {
    /// Shape of the images this convolver accepts (rank 1–3).
    public let imageShape: [Int]
    /// The kernel's shape.
    public let kernelShape: [Int]
    /// How images are extended past their edges.
    public let boundary: Boundary
    let grid: FFTGrid
    let spectrum: FFTWBuffer

    /// Prepares the FFT grid and the kernel spectrum; throws on rank or size mismatches.
    public init(kernel: Tensor, imageShape: [Int], boundary: Boundary = .zero) throws {
        grid = try FFTGrid(imageShape: imageShape, kernelShape: kernel.shape, boundary: boundary, op: "FFTConvolver")
        self.imageShape = imageShape
        kernelShape = kernel.shape
        self.boundary = boundary
        spectrum = grid.kernelSpectrum(kernel)
    }

    /// Shape of the padded FFT grid.
    public var gridShape: [Int] { grid.plan.shape }

    /// `x ⊛ kernel`, same shape as `x`.
    public func apply(_ x: Tensor) throws -> Tensor {
        try run(x, op: "FFTConvolver.apply", adjoint: false)
    }

    /// The transpose of `apply` (correlation with the kernel, folded back through the padding).
    public func adjoint(_ y: Tensor) throws -> Tensor {
        try run(y, op: "FFTConvolver.adjoint", adjoint: true)
    }

    private func run(_ x: Tensor, op: String, adjoint: Bool) throws -> Tensor {
        guard x.shape == imageShape else {
            throw TensorError.shapeMismatch(op: op, detail: "input \(x.shape) vs convolver image shape \(imageShape)")
        }
        let buffer = grid.plan.makeBuffer()
        x.withUnsafeBufferPointer { grid.pad($0.baseAddress!, into: buffer.base, maps: adjoint ? grid.zeroMaps : grid.maps) }
        grid.plan.forward(buffer.base)
        multiplySpectrum(buffer.base, by: spectrum.base, count: grid.spectrumCount, conjugate: adjoint)
        grid.plan.inverse(buffer.base)
        var out = Tensor(uninitialized: imageShape)
        out.withUnsafeMutableBufferPointer { o in
            if adjoint {
                grid.fold(buffer.base, into: o.baseAddress!, maps: grid.maps, scale: 1)
            } else {
                grid.crop(buffer.base, into: o.baseAddress!)
            }
        }
        return out
    }
}

/// Convolves `x` with `kernel` through FFTs (`same`-size output centred like
/// `scipy.signal.fftconvolve(mode: "same")`), extending `x` past its edges by `boundary`.
public func fftConvolve(_ x: Tensor, _ kernel: Tensor, boundary: Boundary = .zero) throws -> Tensor {
    try FFTConvolver(kernel: kernel, imageShape: x.shape, boundary: boundary).apply(x)
}
