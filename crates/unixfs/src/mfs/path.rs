//! MFS paths: Kubo's `checkPath` (`core/commands/files.go`) as a pure function.
//!
//! Kubo takes any string that starts with `/`, cleans it with Go's `path.Clean` (repeated
//! slashes collapse, `.` components go, `..` removes the component before it and stops at the
//! root) and keeps one trailing slash if the input had one (`cp`, `mv` and `write` give it a
//! meaning). cairn does the same and adds two bounds Kubo does not have:
//! [`MAX_PATH_LEN`] bytes and [`MAX_PATH_COMPONENTS`] components.

use super::MfsError;

/// The longest path accepted, in bytes (before cleaning).
pub const MAX_PATH_LEN: usize = 4096;

/// The most components a cleaned path may have.
pub const MAX_PATH_COMPONENTS: usize = 256;

/// A checked, cleaned absolute MFS path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MfsPath {
    /// The components from the root, each non-empty, never `.` or `..`, never containing `/`.
    components: Vec<String>,
    /// Whether the input ended with `/` (kept by Kubo's `checkPath`, except for `/` itself).
    trailing_slash: bool,
}

impl MfsPath {
    /// The root, `/`.
    pub fn root() -> Self {
        MfsPath {
            components: Vec::new(),
            trailing_slash: false,
        }
    }

    /// The components from the root (empty for `/`).
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// Whether the path as given ended with a slash (`/a/b/`); never true for `/` itself.
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// Whether this is the root (`/`, or `//`, which Kubo's `checkPath` keeps as `//`).
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component (`None` for the root).
    pub fn name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }

    /// The parent directory's components (empty for the root and its children).
    pub fn parent_components(&self) -> &[String] {
        let n = self.components.len().saturating_sub(1);
        &self.components[..n]
    }

    /// The path with one more component (no trailing slash).
    pub fn join(&self, name: &str) -> Self {
        let mut components = self.components.clone();
        components.push(name.to_string());
        MfsPath {
            components,
            trailing_slash: false,
        }
    }
}

impl std::fmt::Display for MfsPath {
    /// Kubo's cleaned form: `/a/b`, `/a/b/` with a trailing slash, `/` for the root.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.components.join("/"))?;
        if self.trailing_slash {
            f.write_str("/")?;
        }
        Ok(())
    }
}

/// Checks and cleans an MFS path as Kubo's `checkPath` does.
///
/// # Errors
/// [`MfsError::EmptyPath`] (`paths must not be empty`), [`MfsError::RelativePath`] (`paths must
/// start with a leading slash`), [`MfsError::InvalidPath`] past [`MAX_PATH_LEN`] bytes or
/// [`MAX_PATH_COMPONENTS`] components, or for a NUL byte (which no Kubo client can send in a
/// query string and no file system accepts).
pub fn parse_path(p: &str) -> Result<MfsPath, MfsError> {
    if p.is_empty() {
        return Err(MfsError::EmptyPath);
    }
    if !p.starts_with('/') {
        return Err(MfsError::RelativePath);
    }
    if p.len() > MAX_PATH_LEN {
        return Err(MfsError::InvalidPath(format!(
            "path is {} bytes, over the {MAX_PATH_LEN} byte limit",
            p.len()
        )));
    }
    if p.contains('\0') {
        return Err(MfsError::InvalidPath("path contains a NUL byte".into()));
    }
    let mut components: Vec<String> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                components.pop();
            }
            name => {
                if components.len() == MAX_PATH_COMPONENTS {
                    return Err(MfsError::InvalidPath(format!(
                        "path has more than {MAX_PATH_COMPONENTS} components"
                    )));
                }
                components.push(name.to_string());
            }
        }
    }
    Ok(MfsPath {
        trailing_slash: p.len() > 1 && p.ends_with('/'),
        components,
    })
}

/// [`parse_path`] over bytes: the path must be UTF-8 (Kubo's are Go strings from a query string,
/// which cairn's RPC decodes as UTF-8).
///
/// # Errors
/// [`MfsError::InvalidPath`] for bytes that are not UTF-8, else as [`parse_path`].
pub fn parse_path_bytes(p: &[u8]) -> Result<MfsPath, MfsError> {
    let s = std::str::from_utf8(p)
        .map_err(|_| MfsError::InvalidPath("path is not valid UTF-8".into()))?;
    parse_path(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(p: &str) -> String {
        parse_path(p).unwrap().to_string()
    }

    #[test]
    fn kubo_check_path() {
        assert!(matches!(parse_path(""), Err(MfsError::EmptyPath)));
        assert!(matches!(parse_path("a/b"), Err(MfsError::RelativePath)));
        assert_eq!(
            parse_path("a").unwrap_err().to_string(),
            "paths must start with a leading slash"
        );
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("/a//b/./c/"), "/a/b/c/");
        assert_eq!(clean("/a/../../b"), "/b");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean("/a/."), "/a");
        assert_eq!(parse_path("/a/b/").unwrap().components(), ["a", "b"]);
        assert!(parse_path("/a/b/").unwrap().has_trailing_slash());
        assert!(!parse_path("/").unwrap().has_trailing_slash());
    }

    #[test]
    fn limits() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert!(matches!(parse_path(&long), Err(MfsError::InvalidPath(_))));
        let many = "/a".repeat(MAX_PATH_COMPONENTS + 1);
        assert!(matches!(parse_path(&many), Err(MfsError::InvalidPath(_))));
        assert!(parse_path(&"/a".repeat(MAX_PATH_COMPONENTS)).is_ok());
        assert!(matches!(
            parse_path_bytes(b"/\xff"),
            Err(MfsError::InvalidPath(_))
        ));
        assert!(matches!(parse_path("/a\0"), Err(MfsError::InvalidPath(_))));
    }
}
