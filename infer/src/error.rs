//! The one error type of ferrax-infer. Core errors (shapes, dtypes, tracing) pass through
//! unchanged; the rest name the site, distribution or argument at fault.

/// Errors of distributions, transforms, effect handlers and inference.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from a tensor operation.
    #[error(transparent)]
    Core(#[from] ferrax_core::Error),
    /// An argument is out of its domain (a shape, a count, a probability, a setting).
    #[error("{what}: {msg}")]
    Invalid {
        /// The function or distribution that rejected it.
        what: &'static str,
        /// What was wrong, with the offending value.
        msg: String,
    },
    /// Two sites of one model run share a name.
    #[error(
        "duplicate site name `{0}`: every sample/param/deterministic site of a model run \
         needs a unique name (inside a loop, put the index in the name, or use a plate)"
    )]
    DuplicateSite(String),
    /// A problem at one site of a model (no random key, a missing value, a bad shape).
    #[error("site `{site}`: {msg}")]
    Site {
        /// The site name.
        site: String,
        /// What went wrong there.
        msg: String,
    },
    /// The requested combination is not supported.
    #[error("{what}: {msg}")]
    Unsupported {
        /// The feature.
        what: &'static str,
        /// Why, and what to do instead.
        msg: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::Site`].
    pub fn site(site: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Site {
            site: site.into(),
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(what: &'static str, msg: impl Into<String>) -> Self {
        Error::Unsupported {
            what,
            msg: msg.into(),
        }
    }
}

/// `Result` with ferrax-infer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
