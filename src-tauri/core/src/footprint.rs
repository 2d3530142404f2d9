//! The app's own memory footprint: lets a long-lived, mostly idle process (the tray app) give back the
//! mapped code pages it touched once — while starting, or while the control panel's webview lived — and
//! no longer runs.
//!
//! Linux maps shared libraries into a process and counts every page the process touched in its RSS
//! until the kernel reclaims it under memory pressure. [`release_code_pages`] unmaps those pages itself
//! (`madvise(MADV_DONTNEED)`): the pages stay in the page cache, so whatever is still needed comes back
//! on its next touch with a minor fault, and only the working set stays counted. This is what reclaim
//! does to clean file pages at any time, so it adds no new failure mode, under two guards:
//!
//! - Only segments of loaded ELF objects (the program and its libraries, listed by `dl_iterate_phdr`)
//!   are touched, and each library is first made permanent (`dlopen` with `RTLD_NOLOAD |
//!   RTLD_NODELETE`, the documented way to promote an already-loaded library). A library that could be
//!   unloaded might have its address range reused by other memory between reading `/proc/self/smaps`
//!   and the `madvise` call; a permanent one cannot. Libraries that toolkits load at run time (the GL
//!   driver, GIO modules) are kept loaded for good this way, which they are in practice anyway.
//! - Only private, non-writable, file-backed mappings without a single private (copy-on-write) page
//!   (`Anonymous: 0 kB`): unmapping one of those discards nothing. A relocated read-only segment
//!   (RELRO) holds private pages and is left alone.

use std::ops::Range;

/// One entry of `/proc/PID/smaps`: the mapping's header line and the counters used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub range: Range<usize>,
    pub perms: String,
    pub path: String,
    /// Resident pages, in kB.
    pub rss_kb: u64,
    /// Private pages that are not the file's (copy-on-write copies), in kB.
    pub anonymous_kb: u64,
    /// Pages locked in memory, in kB.
    pub locked_kb: u64,
    /// The kernel's flags of the area (`VmFlags:`), e.g. `rd ex mr mw me`.
    pub vm_flags: String,
}

/// What one [`release_code_pages`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// How many mappings were unmapped.
    pub mappings: usize,
    /// Their resident size before, in kB.
    pub kb: u64,
}

/// Unmaps the resident pages of the program's and its libraries' mappings that hold nothing but clean
/// file pages. A no-op (nothing released) where `/proc` or the glibc loader interface is missing.
pub fn release_code_pages() -> std::io::Result<Released> {
    release_within(&pinned_segments())
}

/// [`release_code_pages`] for the given segments, which must belong to objects that stay loaded.
pub(crate) fn release_within(segments: &[Range<usize>]) -> std::io::Result<Released> {
    if segments.is_empty() {
        return Ok(Released::default());
    }
    let now = parse_smaps(&std::fs::read_to_string("/proc/self/smaps")?);
    let mut released = Released::default();
    for mapping in releasable(segments, &now) {
        unmap_pages(&mapping.range)?;
        released.mappings += 1;
        released.kb += mapping.rss_kb;
    }
    Ok(released)
}

/// The mappings of `now` that may be unmapped: inside one of `segments` (the load segments of objects
/// that stay loaded), resident, private, not writable, backed by a regular file, not locked, and
/// without any private page.
pub fn releasable<'a>(segments: &[Range<usize>], now: &'a [Mapping]) -> Vec<&'a Mapping> {
    now.iter()
        .filter(|m| {
            segments
                .iter()
                .any(|s| s.start <= m.range.start && m.range.end <= s.end)
        })
        .filter(|m| is_clean_file_mapping(m))
        .collect()
}

fn is_clean_file_mapping(m: &Mapping) -> bool {
    let perms = m.perms.as_bytes();
    let private_readable = perms.len() == 4 && perms[0] == b'r' && perms[3] == b'p';
    let writable = perms.get(1) == Some(&b'w');
    // VM_IO / VM_PFNMAP (device memory) and VM_LOCKED never qualify, whatever the path says.
    let special = m
        .vm_flags
        .split_whitespace()
        .any(|f| matches!(f, "io" | "pf" | "lo"));
    private_readable
        && !writable
        && m.path.starts_with('/')
        && !m.path.starts_with("/dev/")
        && !m.path.starts_with("/memfd:")
        && !m.path.ends_with(" (deleted)")
        && !special
        && m.rss_kb > 0
        && m.anonymous_kb == 0
        && m.locked_kb == 0
}

/// Parses `/proc/PID/smaps`: a header line per mapping followed by `Key: value` lines.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(mapping) = parse_header(line) {
            mappings.push(mapping);
            continue;
        }
        let Some(current) = mappings.last_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kb = || {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        };
        match key {
            "Rss" => current.rss_kb = kb(),
            "Anonymous" => current.anonymous_kb = kb(),
            "Locked" => current.locked_kb = kb(),
            "VmFlags" => current.vm_flags = value.trim().to_string(),
            _ => {}
        }
    }
    mappings
}

/// A header line, `start-end perms offset dev inode [path]`; `None` for any other line.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    let _offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?.split_once(':')?;
    let _inode: u64 = fields.next()?.parse().ok()?;
    // The path is the rest of the line after the inode (it may hold spaces).
    let path = fields.collect::<Vec<_>>().join(" ");
    Some(Mapping {
        range: start..end,
        perms: perms.to_string(),
        path,
        rss_kb: 0,
        anonymous_kb: 0,
        locked_kb: 0,
        vm_flags: String::new(),
    })
}

/// One loaded ELF object: its name as the loader knows it (empty for the program) and its load
/// segments, rounded out to whole pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedObject {
    pub name: String,
    pub segments: Vec<Range<usize>>,
}

/// The load segments of the program and of every library that could be made permanent.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pinned_segments() -> Vec<Range<usize>> {
    let pinned: Vec<String> = loaded_objects()
        .into_iter()
        .map(|o| o.name)
        .filter(|name| name.is_empty() || pin(name))
        .collect();
    // Listed again: only objects pinned above count (a library unloaded before its pin is not there,
    // and one loaded since was not pinned).
    loaded_objects()
        .into_iter()
        .filter(|o| pinned.contains(&o.name))
        .flat_map(|o| o.segments)
        .collect()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pinned_segments() -> Vec<Range<usize>> {
    Vec::new()
}

/// Makes an already-loaded library permanent; false if it is not loaded (any more).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin(name: &str) -> bool {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: RTLD_NOLOAD never loads anything (so no constructor runs); for a loaded object it returns
    // a handle and marks the object never to be unloaded. Closing the handle drops only our reference.
    unsafe {
        let handle = libc::dlopen(
            c_name.as_ptr(),
            libc::RTLD_NOLOAD | libc::RTLD_NODELETE | libc::RTLD_LAZY,
        );
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

/// The objects the dynamic loader has loaded, with their load segments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn loaded_objects() -> Vec<LoadedObject> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call, and `data` is
        // the vector handed to `dl_iterate_phdr` below.
        let (info, objects) = unsafe { (&*info, &mut *data.cast::<Vec<LoadedObject>>()) };
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string owned by the loader.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
                .to_string_lossy()
                .into_owned()
        };
        let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: `dlpi_phnum` program headers at `dlpi_phdr`, mapped as long as the object is.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let page = page_size();
        let segments = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD && h.p_memsz > 0)
            .map(|h| {
                let start = info.dlpi_addr as usize + h.p_vaddr as usize;
                let end = start + h.p_memsz as usize;
                (start / page * page)..end.div_ceil(page) * page
            })
            .collect();
        objects.push(LoadedObject { name, segments });
        0
    }
    let mut objects: Vec<LoadedObject> = Vec::new();
    // SAFETY: `visit` only reads what the loader hands it and pushes into `objects`, which outlives the
    // call.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), (&mut objects as *mut Vec<LoadedObject>).cast());
    }
    objects
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

#[cfg(target_os = "linux")]
fn unmap_pages(range: &Range<usize>) -> std::io::Result<()> {
    // SAFETY: `range` is a whole mapping inside a load segment of an object that can no longer be
    // unloaded (so the range still is that mapping), and `releasable` found it private, read-only,
    // file-backed and without private pages. MADV_DONTNEED on it only drops page-table entries: the
    // next access faults the same file pages back in, so no memory that Rust or any library holds
    // changes.
    let rc = unsafe {
        libc::madvise(
            range.start as *mut libc::c_void,
            range.end - range.start,
            libc::MADV_DONTNEED,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn unmap_pages(_range: &Range<usize>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests;
