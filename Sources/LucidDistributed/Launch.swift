import Foundation
import LucidCore

/// How this process was started: alone, or as one rank of an MPI job (`mpirun`, `srun`).
public enum Launch {
    /// The number of processes of the MPI job that started this one, read from the variables
    /// the launchers set (Open MPI's `OMPI_COMM_WORLD_SIZE`, PMI's `PMI_SIZE`, Slurm's
    /// `SLURM_NTASKS` with `PMIX_RANK`); nil when no launcher started it.
    public static func processCount(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let value = environment[key], let n = Int(value) { return n }
        }
        if environment["PMIX_RANK"] != nil {
            return environment["SLURM_NTASKS"].flatMap { Int($0) } ?? environment["SLURM_STEP_NUM_TASKS"].flatMap { Int($0) } ?? 2
        }
        return nil
    }

    /// Whether this process is one of several ranks, so MPI must be initialized. A single
    /// process (`lucid train` alone, or `mpirun -np 1`) never initializes MPI.
    public static var isDistributed: Bool { (processCount() ?? 1) > 1 }

    /// CPUs this process may run on (its affinity mask, `Cpus_allowed` in /proc/self/status;
    /// `mpirun` may bind a rank to a few).
    public static var availableCPUs: Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return cores }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        return max(1, min(count, cores))
    }

    /// The thread budget of one of `localRanks` ranks on this machine: `LUCID_THREADS` when set,
    /// else the CPUs this process may use divided among the machine's ranks (at least 1), so
    /// that the ranks together never run more threads than there are cores.
    public static func threadsPerRank(localRanks: Int, environment: [String: String] = ProcessInfo.processInfo.environment,
                                      cpus: Int = availableCPUs, machineCPUs: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        if let s = environment["LUCID_THREADS"], let n = Int(s), n > 0 { return n }
        // A rank bound to fewer CPUs than the machine's share of each (mpirun --bind-to core)
        // uses its own CPUs; an unbound one gets its share of the machine.
        return max(1, min(cpus, machineCPUs / max(1, localRanks)))
    }
}
