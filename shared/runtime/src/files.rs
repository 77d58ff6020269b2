//! Files a binary keeps for itself (SQLite databases, the events journal,
//! a generated key): readable by this user alone, in a directory that is
//! too, since they hold password hashes, emails and client addresses.

use std::path::Path;

/// Creates the directory that will hold `path` (and its parents), mode
/// 0700, if it is missing.
pub fn create_private_parent(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_made_private_and_an_existing_one_is_left_alone() {
        let root = tempfile::tempdir().expect("dir");
        let file = root.path().join("a/b/file");
        create_private_parent(&file).expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.path().join("a/b"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        create_private_parent(&file).expect("again");
        create_private_parent(Path::new("bare")).expect("no parent");
    }
}
