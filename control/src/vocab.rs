//! The words both the policy as written ([`crate::model`]) and its compiled form
//! ([`crate::snapshot`]) use: actions, modes, severities, what to do with traffic that
//! cannot be judged, and group ids. Depends on nothing else in this crate, so that the
//! language, its checks and its compiled form can all import it without importing each
//! other.

use serde::{Deserialize, Serialize};

/// Enforcement mode of the policy or of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Allow everything; record what was seen so `palisade learn` can propose rules.
    Learn,
    /// Judge everything, alert on what would be denied, never drop.
    Monitor,
    /// Drop what is denied.
    Protect,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Learn => "learn",
            Mode::Monitor => "monitor",
            Mode::Protect => "protect",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// Allow and emit an alert.
    Alert,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Alert => "alert",
        }
    }
}

/// What the policy does with a flow it cannot judge (`onUninspectable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnUninspectable {
    /// Reset the flow (enforced in `protect` mode; an alert elsewhere).
    Deny,
    /// Let it through with an alert.
    Alert,
    /// Let it through; only counted.
    Allow,
}

impl OnUninspectable {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnUninspectable::Deny => "deny",
            OnUninspectable::Alert => "alert",
            OnUninspectable::Allow => "allow",
        }
    }

    /// What a mode does when neither the groups nor `spec` say: fail closed where the
    /// policy enforces, alert where it watches, stay out of the way where it learns.
    pub const fn default_for(mode: Mode) -> Self {
        match mode {
            Mode::Protect => OnUninspectable::Deny,
            Mode::Monitor => OnUninspectable::Alert,
            Mode::Learn => OnUninspectable::Allow,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What `protect` mode does with traffic no rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// A group, numbered in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u16);
