//! CPU time of processes, from `/proc` (for the benchmarks).

/// CPU seconds so far of the processes whose command line contains `needle`
/// (`/proc/<pid>/stat` utime + stime; USER_HZ is 100 on Linux).
pub fn seconds(needle: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) in parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are the 14th and 15th fields, 12th and 13th after ')'.
        ticks += field(11) + field(12);
    }
    ticks as f64 / 100.0
}
