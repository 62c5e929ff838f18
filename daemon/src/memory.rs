//! Giving freed memory back to the system after a load.
//!
//! Measured with 10,000 settings (RSS, release build): 63.4 MiB with
//! glibc's defaults, 45.4 MiB with [`release_freed`] alone, about 31 MiB
//! with [`limit_retention`] as well (the live heap is about 18 MiB).
//!
//! Reading a large config dir parses every file whole: the TOML parser's
//! event buffer and document are many times the file's size (a 1.2 MB
//! catalogue of 10,000 settings peaks at about 28 MB over what stays). All
//! of it is freed once the layers are built, but glibc's allocator keeps
//! freed pages in its arenas (and freeing a large block raises its trim
//! threshold), so RSS stays at the parse's peak. [`release_freed`] hands
//! those pages back, so RSS follows the live data; it runs after the first
//! load and after every reload, never on a request's path.

/// Blocks of 128 KiB and more get their own mapping, returned to the
/// system when freed, whatever their size: glibc's default raises that
/// threshold to the largest block freed so far (up to 32 MiB), so after the
/// TOML parser frees its buffers of a large file, later large blocks come
/// from the arenas and are never returned. Setting the threshold fixes it
/// (glibc's `mallopt(M_MMAP_THRESHOLD)`, which also fixes the trim
/// threshold at twice it). Does nothing elsewhere than glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn limit_retention() {
    // SAFETY: mallopt only sets allocator parameters; glibc takes its own
    // lock to do so and every later allocation reads them.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Does nothing: this allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn limit_retention() {}

/// Returns the allocator's free pages to the system: glibc's
/// `malloc_trim(0)`, which walks every arena (not only the top of the main
/// heap) and releases each free page. Returns whether any memory was
/// released. Does nothing elsewhere than glibc, whose allocators give large
/// blocks back themselves.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_freed() -> bool {
    // SAFETY: malloc_trim takes no pointers and touches no memory in use;
    // glibc serializes it with every other allocator call by the arenas'
    // own locks.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Does nothing: this allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed() -> bool {
    false
}
