//! Country and AS-number rules (`captchaify_country`, `captchaify_asn`): which action a
//! location takes for clients from a country or a network.
//!
//! The country and AS number come from the operator's MaxMind-format database
//! (`captchaify_geoip_db`) or, without one, from ip-api's answer about the address. When
//! several rules match a client (its country and its AS number), the strictest action wins:
//! `block`, then `fight`, then `captcha`, then `let`.

use thiserror::Error;

use super::geoip::{parse_asn, Country, GeoError};
use crate::policy::Action;

/// The rules of one configuration level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoRules {
    countries: Vec<(Country, Action)>,
    asns: Vec<(u32, Action)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("expected one or more {what} and an action (let, fight, captcha or block)")]
    Syntax { what: &'static str },
    #[error(transparent)]
    Geo(#[from] GeoError),
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

impl GeoRules {
    /// `captchaify_country CC... ACTION`.
    pub fn add_countries(&mut self, args: &[&str]) -> Result<(), RuleError> {
        let (action, codes) = split(args, "country codes")?;
        for code in codes {
            let country = Country::parse(code)?;
            if self.countries.iter().any(|(c, _)| *c == country) {
                return Err(RuleError::Duplicate(format!(
                    "country {}",
                    code.to_ascii_uppercase()
                )));
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
    pub fn action_for(&self, country: Option<Country>, asn: Option<u32>) -> Option<Action> {
        let by_country = country.and_then(|c| self.countries.iter().find(|(rc, _)| *rc == c));
        let by_asn = asn.and_then(|a| self.asns.iter().find(|(ra, _)| *ra == a));
        [by_country.map(|r| r.1), by_asn.map(|r| r.1)]
            .into_iter()
            .flatten()
            .max_by_key(|action| strictness(*action))
    }
}

fn split<'a>(
    args: &'a [&'a str],
    what: &'static str,
) -> Result<(Action, &'a [&'a str]), RuleError> {
    match args.split_last() {
        Some((action, values)) if !values.is_empty() => Ok((action.parse()?, values)),
        _ => Err(RuleError::Syntax { what }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Option<Country> {
        Some(Country::parse(code).unwrap())
    }

    #[test]
    fn countries_and_asns_map_to_actions() {
        let mut rules = GeoRules::default();
        rules.add_countries(&["cn", "RU", "block"]).unwrap();
        rules.add_countries(&["DE", "let"]).unwrap();
        rules.add_asns(&["AS64500", "64501", "fight"]).unwrap();
        assert_eq!(rules.action_for(c("CN"), None), Some(Action::Block));
        assert_eq!(rules.action_for(c("RU"), Some(1)), Some(Action::Block));
        assert_eq!(rules.action_for(c("FR"), None), None);
        assert_eq!(rules.action_for(None, Some(64501)), Some(Action::Fight));
        // The strictest matching rule wins: a German address in a fought network is fought.
        assert_eq!(rules.action_for(c("DE"), Some(64500)), Some(Action::Fight));
        assert_eq!(rules.action_for(c("CN"), Some(64500)), Some(Action::Block));
        assert_eq!(rules.action_for(c("DE"), None), Some(Action::Let));
        assert_eq!(rules.action_for(None, None), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut rules = GeoRules::default();
        assert!(matches!(
            rules.add_countries(&["block"]),
            Err(RuleError::Syntax { .. })
        ));
        assert!(matches!(
            rules.add_countries(&["DEU", "block"]),
            Err(RuleError::Geo(GeoError::Country(_)))
        ));
        assert!(matches!(
            rules.add_countries(&["D1", "block"]),
            Err(RuleError::Geo(GeoError::Country(_)))
        ));
        assert!(matches!(
            rules.add_countries(&["DE", "deny"]),
            Err(RuleError::Action(_))
        ));
        assert!(matches!(
            rules.add_asns(&["ASX", "block"]),
            Err(RuleError::Geo(GeoError::Asn(_)))
        ));
        assert!(matches!(
            rules.add_asns(&["99999999999", "block"]),
            Err(RuleError::Geo(GeoError::Asn(_)))
        ));
        rules.add_countries(&["DE", "block"]).unwrap();
        assert_eq!(
            rules.add_countries(&["de", "let"]).unwrap_err().to_string(),
            "country DE already has a rule here"
        );
        assert!(rules.add_asns(&["3320", "let"]).is_ok());
        assert!(matches!(
            rules.add_asns(&["as3320", "block"]),
            Err(RuleError::Duplicate(_))
        ));
    }
}
