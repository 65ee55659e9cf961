//! `pchat-operator run`: the Kubernetes controller until SIGTERM.

use std::process::ExitCode;

/// `pchat-operator run`: exit 0 after a graceful shutdown, 1 when it cannot start.
pub(super) fn run_command(opts: crate::k8s::Options) -> ExitCode {
    without_huge_pages();
    purge_freed_memory_at_once();
    let Some(runtime) = super::runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::k8s::run(opts, crate::k8s::shutdown::signal()));
    // Background tasks (watch connections) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The host name, the identity of a replica outside a pod.
pub(super) fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pchat-operator-{}", std::process::id()))
}

/// No transparent huge pages for the operator's memory. mimalloc asks for them on its arenas,
/// and where the kernel grants them on request (THP `madvise`, a common default) each touched
/// 2 MiB region becomes resident whole: at 60 pools the operator's RSS was 64 MiB with them and
/// 48 MiB without. The demo and the benchmarks keep them (their in-process simulator runs a
/// fifth faster with them). The kernel checks the flag at each page fault, so regions mapped
/// before this call are covered too.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes no pointer; it sets a flag of this process.
        let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if result != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "transparent huge pages stay allowed"
            );
        }
    }
}

/// `mi_option_purge_delay` in the `mi_option_t` of mimalloc 3.3 (libmimalloc-sys 0.1.49,
/// pinned): the crate's own constants follow mimalloc 2's numbering.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc gives freed pages back to the system at once rather than after its default 10 ms
/// (100 ms for whole arenas). The operator frees a pass's buffers between passes, and a cold
/// start of many pools frees and allocates in waves: at 60 pools the peak RSS was 48 MiB with
/// the delay and 43 MiB without, for about a fifth more CPU in the allocator. The demo and the
/// benchmarks keep the delay.
fn purge_freed_memory_at_once() {
    // SAFETY: sets one of mimalloc's global options; it takes no pointer and mimalloc reads
    // the purge delay afresh at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}
