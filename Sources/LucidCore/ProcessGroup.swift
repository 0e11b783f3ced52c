import Foundation

/// The processes of a data-parallel run (the ranks of an MPI job): every process runs the same
/// program on its share of the work, and these collective operations combine their results.
///
/// Every process must make the same calls in the same order. LucidDistributed implements it
/// over MPI; a run of one process has no group (`nil`) rather than a group of one.
public protocol ProcessGroup: AnyObject {
    /// This process's index, `0..<size`; process 0 writes the run's files.
    var rank: Int { get }
    /// Number of processes.
    var size: Int { get }
    /// The element-wise sums of every process's `values` (all of one length), on every process.
    func sum(_ values: [Double]) throws -> [Double]
    /// Process `root`'s `values` (every process passes as many), on every process.
    func broadcast(_ values: [Double], from root: Int) throws -> [Double]
    /// Adds every process's `tensor` (all of one shape) element-wise into process `root`'s;
    /// the other processes' tensors are left as they were.
    func sumTensor(_ tensor: inout Tensor, onto root: Int) throws
    /// Sends `tensor` to process `destination`, which receives it with `receiveTensor(from:)`.
    func sendTensor(_ tensor: Tensor, to destination: Int) throws
    /// The tensor process `source` sends with `sendTensor(_:to:)`.
    func receiveTensor(from source: Int) throws -> Tensor
    /// Sends `data` to process `destination`, which receives it with `receiveData(from:)`.
    func sendData(_ data: Data, to destination: Int) throws
    /// The bytes process `source` sends with `sendData(_:to:)`.
    func receiveData(from source: Int) throws -> Data
}
