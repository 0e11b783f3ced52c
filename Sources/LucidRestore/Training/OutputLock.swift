import Foundation
import LucidCore

/// One training run's exclusive claim on its checkpoint folder: an `flock` on `.lucid.lock` in
/// the folder, held while the object lives. The kernel releases it when the process ends, however
/// it ends (SIGKILL included), so a killed run never leaves a stale lock in the way of `--resume`.
final class OutputLock {
    /// Name of the lock file inside the folder; it holds the pid of the run that has the lock.
    static let fileName = ".lucid.lock"

    private let descriptor: Int32

    /// Takes the lock on `folder` (which must exist), or throws naming the run that holds it.
    init(folder: String) throws {
        let file = joinPath(folder, OutputLock.fileName)
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError(message: "\(folder): cannot create the lock file \(OutputLock.fileName) (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            var text = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &text, text.count, 0)
            close(fd)
            guard busy else { throw TrainingError(message: "\(folder): cannot lock \(OutputLock.fileName) (\(reason))") }
            let pid = n > 0 ? Int(String(decoding: text[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            throw TrainingError(message: "\(folder): another lucid train\(pid.map { " (pid \($0))" } ?? "") is writing this checkpoint folder; wait for it to end (or stop it) before training or resuming here, or choose another --output")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        descriptor = fd
    }

    deinit { close(descriptor) }
}
