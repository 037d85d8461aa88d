//! The `cairn` binary's memory allocator: jemalloc (`tikv-jemallocator`).
//!
//! The release soak (BENCHMARKS.md "Soak") found the daemon's RSS climbing under glibc's malloc
//! during a steady add / read / GC load while nothing live leaked: freed memory stayed stranded in
//! glibc's per-thread arenas (up to 8 per core; the runtime's workers and the blocking threads
//! that import, hash and collect garbage each took one). jemalloc returns freed pages to the
//! kernel on a timer (`dirty_decay_ms`, 10 s by default) and bounds its arenas at 4 per core.
//! Measured on the same load for 30 minutes: glibc 167 → 474 MiB, jemalloc within 98–222 MiB
//! (196 at the start, 214 at the end); the 1,000-file watch import peaks at 80 MiB. mimalloc was
//! tried first and backed out: it bounded the soak but raised idle and peak RSS elsewhere (the
//! watch import: 199 MiB).
//!
//! Only the binary chooses: the library crates leave the allocator to embedders. Not used on
//! MSVC targets, where jemalloc does not build.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
