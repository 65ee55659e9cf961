//! The `pchat-operator` binary: the allocator, then the library's command line.
/// mimalloc rather than the system allocator: the operator (and the in-process simulator of
/// the demo) makes many small, short-lived allocations per pass, and glibc's malloc spent a
/// third of an observation pass consolidating and unlinking free chunks (`perf`, this repo's
/// `sim_figures` bench: one observation of four instances 2.9 ms -> 2.0 ms).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pchat_operator::cli::main()
}
