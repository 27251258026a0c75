//! Which file the module's code was loaded from, and whether that file is still the one at
//! its path.
//!
//! nginx loads a dynamic module with `dlopen(path)`, and the C library hands back the
//! library already loaded under the same path rather than read the file again. So after the
//! module file is replaced (by rename, as it must be: see `scripts/build`), `nginx -s reload`
//! keeps running the module that was loaded when nginx started; only a new master (a restart,
//! or nginx's binary upgrade: `kill -USR2`, then `kill -QUIT` the old master) loads the new
//! file. The module tells the operator so at every reload where it finds its file replaced.

/// One line of `/proc/self/maps`: the address range, the file's device and inode, its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping<'a> {
    pub start: usize,
    pub end: usize,
    pub inode: u64,
    pub path: &'a str,
    /// The kernel marks a mapped file that was unlinked (or renamed over) ` (deleted)`.
    pub deleted: bool,
}

/// Parses a `/proc/PID/maps` line: `start-end perms offset dev inode path`.
pub fn parse_maps_line(line: &str) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let _perms = fields.next()?;
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next().unwrap_or("").trim_start();
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(path) => (path, true),
        None => (path, false),
    };
    Some(Mapping {
        start,
        end,
        inode,
        path,
        deleted,
    })
}

/// The mapping of `maps` (the text of `/proc/self/maps`) that holds `address`.
pub fn mapping_of(maps: &str, address: usize) -> Option<Mapping<'_>> {
    maps.lines()
        .filter_map(parse_maps_line)
        .find(|m| (m.start..m.end).contains(&address))
}

/// When the file this code was loaded from is no longer the file at its path: that path.
/// `None` when it still is, or when it cannot be told (no `/proc`).
pub fn replaced_module_file() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let here = replaced_module_file as fn() -> Option<String> as usize;
    let mapping = mapping_of(&maps, here)?;
    if mapping.path.is_empty() {
        return None;
    }
    let on_disk = std::fs::metadata(mapping.path).ok().map(|m| m.ino());
    (mapping.deleted || on_disk != Some(mapping.inode)).then(|| mapping.path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_read_with_their_inode_and_deletion() {
        let line = "7f19e4400000-7f19e47b7000 r-xp 00010000 fe:00 10010765                   /tmp/swap/mod/m.so (deleted)";
        assert_eq!(
            parse_maps_line(line),
            Some(Mapping {
                start: 0x7f19e4400000,
                end: 0x7f19e47b7000,
                inode: 10010765,
                path: "/tmp/swap/mod/m.so",
                deleted: true
            })
        );
        let anonymous =
            "7ffd5c1e2000-7ffd5c203000 rw-p 00000000 00:00 0                          [stack]";
        assert_eq!(
            parse_maps_line(anonymous).map(|m| (m.inode, m.path, m.deleted)),
            Some((0, "[stack]", false))
        );
        let bare = "00400000-00452000 r-xp 00000000 08:02 173521";
        assert_eq!(parse_maps_line(bare).map(|m| m.path), Some(""));
        assert_eq!(parse_maps_line("garbage"), None);
        let maps = format!("{anonymous}\n{line}\n");
        assert_eq!(
            mapping_of(&maps, 0x7f19e4400010).map(|m| m.inode),
            Some(10010765)
        );
        assert_eq!(mapping_of(&maps, 0x1000), None);
    }

    #[test]
    fn the_test_binary_is_its_own_file() {
        // The test binary was not replaced while it runs.
        assert_eq!(replaced_module_file(), None);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let here = replaced_module_file as fn() -> Option<String> as usize;
        let mapping = mapping_of(&maps, here).expect("our code is mapped from a file");
        assert!(mapping.path.contains("captchaify"), "{}", mapping.path);
    }
}
