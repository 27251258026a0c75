//! Country and AS-number rules (`captchaify_country`, `captchaify_asn`): which action a
//! location takes for clients from a country or a network.
//!
//! The country and AS number come from the operator's MaxMind-format database
//! (`captchaify_geoip_db`) or, without one, from ip-api's answer about the address. When
//! several rules match a client (its country and its AS number), the strictest action wins:
//! `block`, then `fight`, then `captcha`, then `let`.

use thiserror::Error;

use crate::policy::Action;

/// The rules of one configuration level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoRules {
    countries: Vec<([u8; 2], Action)>,
    asns: Vec<(u32, Action)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("expected one or more {what} and an action (let, fight, captcha or block)")]
    Syntax { what: &'static str },
    #[error("invalid country code \"{0}\", expected two letters such as DE or US")]
    Country(String),
    #[error("invalid AS number \"{0}\", expected e.g. 3320 or AS3320")]
    Asn(String),
    #[error("{0} already has a rule here")]
    Duplicate(String),
    #[error(transparent)]
    Action(#[from] crate::policy::InvalidAction),
}

/// How strict an action is, for choosing among matching rules.
fn strictness(action: Action) -> u8 {
    match action {
        Action::Let => 0,
        Action::Captcha => 1,
        Action::Fight => 2,
        Action::Block => 3,
    }
}

/// A two-letter country code, upper-cased.
pub fn parse_country(code: &str) -> Result<[u8; 2], RuleError> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Ok([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => Err(RuleError::Country(code.to_string())),
    }
}

/// An AS number: `3320` or `AS3320` (any case).
pub fn parse_asn(value: &str) -> Result<u32, RuleError> {
    let digits = value
        .strip_prefix("AS")
        .or_else(|| value.strip_prefix("as"))
        .or_else(|| value.strip_prefix("As"))
        .unwrap_or(value);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleError::Asn(value.to_string()));
    }
    digits.parse().map_err(|_| RuleError::Asn(value.to_string()))
}

impl GeoRules {
    /// `captchaify_country CC... ACTION`.
    pub fn add_countries(&mut self, args: &[&str]) -> Result<(), RuleError> {
        let (action, codes) = split(args, "country codes")?;
        for code in codes {
            let country = parse_country(code)?;
            if self.countries.iter().any(|(c, _)| *c == country) {
                return Err(RuleError::Duplicate(format!("country {}", code.to_ascii_uppercase())));
            }
            self.countries.push((country, action));
        }
        Ok(())
    }

    /// `captchaify_asn N... ACTION`.
    pub fn add_asns(&mut self, args: &[&str]) -> Result<(), RuleError> {
        let (action, numbers) = split(args, "AS numbers")?;
        for number in numbers {
            let asn = parse_asn(number)?;
            if self.asns.iter().any(|(a, _)| *a == asn) {
                return Err(RuleError::Duplicate(format!("AS{asn}")));
            }
            self.asns.push((asn, action));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.countries.is_empty() && self.asns.is_empty()
    }

    /// The action the rules prescribe for a client, if any matches.
    pub fn action_for(&self, country: Option<[u8; 2]>, asn: Option<u32>) -> Option<Action> {
        let by_country = country.and_then(|c| self.countries.iter().find(|(rc, _)| *rc == c));
        let by_asn = asn.and_then(|a| self.asns.iter().find(|(ra, _)| *ra == a));
        [by_country.map(|r| r.1), by_asn.map(|r| r.1)]
            .into_iter()
            .flatten()
            .max_by_key(|action| strictness(*action))
    }
}

fn split<'a>(args: &'a [&'a str], what: &'static str) -> Result<(Action, &'a [&'a str]), RuleError> {
    match args.split_last() {
        Some((action, values)) if !values.is_empty() => Ok((action.parse()?, values)),
        _ => Err(RuleError::Syntax { what }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_and_asns_map_to_actions() {
        let mut rules = GeoRules::default();
        rules.add_countries(&["cn", "RU", "block"]).unwrap();
        rules.add_countries(&["DE", "let"]).unwrap();
        rules.add_asns(&["AS64500", "64501", "fight"]).unwrap();
        assert_eq!(rules.action_for(Some(*b"CN"), None), Some(Action::Block));
        assert_eq!(rules.action_for(Some(*b"RU"), Some(1)), Some(Action::Block));
        assert_eq!(rules.action_for(Some(*b"FR"), None), None);
        assert_eq!(rules.action_for(None, Some(64501)), Some(Action::Fight));
        // The strictest matching rule wins: a German address in a fought network is fought.
        assert_eq!(rules.action_for(Some(*b"DE"), Some(64500)), Some(Action::Fight));
        assert_eq!(rules.action_for(Some(*b"CN"), Some(64500)), Some(Action::Block));
        assert_eq!(rules.action_for(Some(*b"DE"), None), Some(Action::Let));
        assert_eq!(rules.action_for(None, None), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut rules = GeoRules::default();
        assert!(matches!(rules.add_countries(&["block"]), Err(RuleError::Syntax { .. })));
        assert!(matches!(rules.add_countries(&["DEU", "block"]), Err(RuleError::Country(_))));
        assert!(matches!(rules.add_countries(&["D1", "block"]), Err(RuleError::Country(_))));
        assert!(matches!(rules.add_countries(&["DE", "deny"]), Err(RuleError::Action(_))));
        assert!(matches!(rules.add_asns(&["ASX", "block"]), Err(RuleError::Asn(_))));
        assert!(matches!(rules.add_asns(&["99999999999", "block"]), Err(RuleError::Asn(_))));
        rules.add_countries(&["DE", "block"]).unwrap();
        assert_eq!(
            rules.add_countries(&["de", "let"]).unwrap_err().to_string(),
            "country DE already has a rule here"
        );
        assert!(rules.add_asns(&["3320", "let"]).is_ok());
        assert!(matches!(rules.add_asns(&["as3320", "block"]), Err(RuleError::Duplicate(_))));
        assert_eq!(parse_asn("AS3320"), Ok(3320));
        assert_eq!(parse_asn("as0"), Ok(0));
    }
}
