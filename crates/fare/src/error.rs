use std::fmt;

/// A network, city or feed file that cannot be used, located as precisely as the format allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file (or built-in resource) name.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field or column, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    /// An error in `file`.
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        LoadError { file: file.into(), line: None, field: None, message: message.into() }
    }

    /// At a line.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// In a field.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// A quote that cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// No station has this name; the closest names follow.
    UnknownStation {
        /// The name asked for.
        name: String,
        /// Closest known names, best first.
        suggestions: Vec<String>,
    },
    /// Several stations carry this name.
    AmbiguousStation {
        /// The name asked for.
        name: String,
        /// The stations it could mean.
        candidates: Vec<String>,
    },
    /// The network has no path between the stations within the fare rules.
    NoRoute {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// No fare rule matches the trip (GTFS feeds).
    NoFare(String),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuoteError::UnknownStation { name, suggestions } if suggestions.is_empty() => {
                write!(f, "no station `{name}`")
            }
            QuoteError::UnknownStation { name, suggestions } => {
                write!(f, "no station `{name}`; did you mean {}?", suggestions.join(", "))
            }
            QuoteError::AmbiguousStation { name, candidates } => {
                write!(f, "`{name}` names several stations: {}", candidates.join(", "))
            }
            QuoteError::NoRoute { from, to } => write!(f, "no route from {from} to {to}"),
            QuoteError::NoFare(why) => write!(f, "no fare: {why}"),
        }
    }
}

impl std::error::Error for QuoteError {}
