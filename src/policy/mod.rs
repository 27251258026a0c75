//! Who gets through: the per-request decision, free of nginx types.
//!
//! The nginx glue gathers [`ClientFacts`] once per request, then asks [`decide`] with the
//! location's [`Action`]. The answer is a [`Verdict`]; dry run turns it into an [`Outcome`]
//! that is logged and exposed but not enforced.

use core::fmt;
use core::str::FromStr;

pub mod variable;

use thiserror::Error;

use crate::crawler::verified;
use crate::reputation::ranges::IpSet;
use crate::reputation::Source;
use crate::state::reputation::Answer;

/// What a location does with its clients (`captchaify_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Everything passes, even clients that look suspicious.
    Let,
    /// Suspicious clients get the block page; nobody is offered a captcha.
    Block,
    /// Every client that has not solved a captcha gets one.
    Fight,
    /// Only suspicious clients that have not solved a captcha get one.
    #[default]
    Captcha,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Let => "let",
            Action::Block => "block",
            Action::Fight => "fight",
            Action::Captcha => "captcha",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid action \"{0}\", expected let, block, fight or captcha")]
pub struct InvalidAction(pub String);

impl FromStr for Action {
    type Err = InvalidAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "let" => Ok(Action::Let),
            "block" => Ok(Action::Block),
            "fight" => Ok(Action::Fight),
            "captcha" => Ok(Action::Captcha),
            other => Err(InvalidAction(other.to_string())),
        }
    }
}

/// How hard the captcha of a location is (`captchaify_hardness`, 1 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hardness(u8);

impl Hardness {
    pub const EASY: Hardness = Hardness(1);
    pub const NORMAL: Hardness = Hardness(2);
    pub const HARD: Hardness = Hardness(3);

    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether a challenge of this hardness asks for the digits of a spoken clip as well:
    /// hardness 3 does. The one place that says so.
    pub const fn has_audio(self) -> bool {
        self.0 >= 3
    }
}

impl fmt::Display for Hardness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for Hardness {
    fn default() -> Self {
        Hardness::NORMAL
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid hardness \"{0}\", expected 1, 2 or 3")]
pub struct InvalidHardness(pub String);

/// `captchaify_precheck`: whether a client due a captcha first proves, with a tiny page, that
/// it keeps a cookie (or a URL argument) and comes back, before an image is drawn for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precheck {
    #[default]
    On,
    Off,
    /// Only while the location is under attack (`captchaify_max_rate_limit`).
    UnderAttack,
}

impl Precheck {
    pub fn applies(self, under_attack: bool) -> bool {
        match self {
            Precheck::On => true,
            Precheck::Off => false,
            Precheck::UnderAttack => under_attack,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid value \"{0}\", expected on, off or under_attack")]
pub struct InvalidPrecheck(pub String);

impl FromStr for Precheck {
    type Err = InvalidPrecheck;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(Precheck::On),
            "off" => Ok(Precheck::Off),
            "under_attack" => Ok(Precheck::UnderAttack),
            other => Err(InvalidPrecheck(other.to_string())),
        }
    }
}

impl FromStr for Hardness {
    type Err = InvalidHardness;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1" => Ok(Hardness::EASY),
            "2" => Ok(Hardness::NORMAL),
            "3" => Ok(Hardness::HARD),
            other => Err(InvalidHardness(other.to_string())),
        }
    }
}

/// Why a client looks like a bot. The first source that says so wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicion {
    /// Too many wrong captcha answers within the failure window.
    FailedChallenges,
    /// The address is on the location's deny list (`captchaify_deny`).
    DenyList,
    /// The address is a Tor exit.
    TorExit,
    /// ip-api says the address is a proxy, VPN or hosting provider.
    ProxyOrHosting,
    /// StopForumSpam lists the address.
    Spammer,
    /// The user agent claims a search engine's crawler that the address is not.
    FakeCrawler,
    /// The user agent is a known crawler, bot or HTTP library, or is missing.
    CrawlerUserAgent,
    /// The address was not looked up yet (`captchaify_lookup_pending captcha`).
    LookupPending,
}

impl Suspicion {
    pub const fn as_str(self) -> &'static str {
        match self {
            Suspicion::FailedChallenges => "too many wrong answers",
            Suspicion::DenyList => "deny list",
            Suspicion::TorExit => "Tor exit",
            Suspicion::ProxyOrHosting => "proxy or hosting address (ip-api)",
            Suspicion::Spammer => "listed by StopForumSpam",
            Suspicion::FakeCrawler => "fake search-engine crawler",
            Suspicion::CrawlerUserAgent => "crawler user agent",
            Suspicion::LookupPending => "address not looked up yet",
        }
    }
}

/// Why a client got the block page, as the page tells the visitor (in their language) and
/// the log line names it. Coarser than [`Suspicion`] on purpose: a visitor learns what kind
/// of rule stopped them and what they can do, not which list of which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// A country or AS-number rule of the location blocks the client's network.
    Network,
    /// The address is on an address list: the location's deny list or a reputation source
    /// (Tor exits, ip-api's proxies and hosting, StopForumSpam).
    AddressList(Suspicion),
    /// A CrowdSec decision on the address (a ban anywhere, a captcha where none is offered).
    CrowdSec(Remediation),
    /// Too many wrong answers within the failure window.
    TooManyFailures,
    /// The client itself looks like a program (a crawler user agent, a fake search-engine
    /// crawler) at a location whose action is `block`.
    SuspiciousClient(Suspicion),
    /// No rule about this client: the location blocks whoever reaches it this way.
    Everyone,
}

impl BlockReason {
    /// The reason as the log line names it (see [`Suspicion::as_str`] for the lists and
    /// the client).
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockReason::Network => "country or AS-number rule",
            BlockReason::AddressList(s) | BlockReason::SuspiciousClient(s) => s.as_str(),
            BlockReason::CrowdSec(Remediation::Ban) => "CrowdSec ban",
            BlockReason::CrowdSec(Remediation::Captcha) => "CrowdSec captcha",
            BlockReason::TooManyFailures => Suspicion::FailedChallenges.as_str(),
            BlockReason::Everyone => "location blocks everyone",
        }
    }

    /// Why [`decide`] blocks a client, in the order it looks at the causes (see `verdict`):
    /// CrowdSec's ban, the failures, a country or AS-number rule, CrowdSec's captcha where
    /// none is offered, then the client's suspicion.
    fn of(
        facts: &ClientFacts,
        suspicion: Option<Suspicion>,
        remediation: Option<Remediation>,
    ) -> BlockReason {
        match (remediation, suspicion) {
            (Some(Remediation::Ban), _) => BlockReason::CrowdSec(Remediation::Ban),
            (_, Some(Suspicion::FailedChallenges)) => BlockReason::TooManyFailures,
            _ if facts.standing.rule == Some(Action::Block) => BlockReason::Network,
            (Some(Remediation::Captcha), _) => BlockReason::CrowdSec(Remediation::Captcha),
            (
                None,
                Some(
                    s @ (Suspicion::DenyList
                    | Suspicion::TorExit
                    | Suspicion::ProxyOrHosting
                    | Suspicion::Spammer),
                ),
            ) => BlockReason::AddressList(s),
            (None, Some(s @ (Suspicion::FakeCrawler | Suspicion::CrawlerUserAgent))) => {
                BlockReason::SuspiciousClient(s)
            }
            (None, Some(Suspicion::LookupPending) | None) => BlockReason::Everyone,
        }
    }
}

/// The third-party sources a location listens to (`captchaify_third_parties`): a set of
/// [`Source`]s, as their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThirdParties(pub u8);

impl ThirdParties {
    pub const ALL: ThirdParties =
        ThirdParties(Source::Tor.bit() | Source::IpApi.bit() | Source::StopForumSpam.bit());
    pub const NONE: ThirdParties = ThirdParties(0);
    /// The default: only the sources that are downloaded whole and so learn nothing about
    /// the visitors (the Tor exit list). ip-api and StopForumSpam are asked about each new
    /// visitor's address, which an operator turns on knowingly (`captchaify_third_parties tor
    /// ipapi stopforumspam`).
    pub const PRIVATE: ThirdParties = ThirdParties(Source::Tor.bit());

    pub const fn of(sources: &[Source]) -> ThirdParties {
        let (mut bits, mut i) = (0, 0);
        while i < sources.len() {
            bits |= sources[i].bit();
            i += 1;
        }
        ThirdParties(bits)
    }

    pub const fn has(self, source: Source) -> bool {
        self.0 & source.bit() != 0
    }

    /// `tor ipapi stopforumspam` in any order and combination, or `off`.
    pub fn parse(args: &[&str]) -> Result<ThirdParties, InvalidThirdParty> {
        if args == ["off"] {
            return Ok(Self::NONE);
        }
        let mut bits = 0;
        for arg in args {
            let Some(source) = Source::parse(arg) else {
                return Err(InvalidThirdParty(arg.to_string()));
            };
            let bit = source.bit();
            if bits & bit != 0 {
                return Err(InvalidThirdParty(format!("{arg} (twice)")));
            }
            bits |= bit;
        }
        if bits == 0 {
            return Err(InvalidThirdParty(String::new()));
        }
        Ok(ThirdParties(bits))
    }
}

impl Default for ThirdParties {
    fn default() -> Self {
        Self::PRIVATE
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid source \"{0}\", expected tor, ipapi and stopforumspam (any of them) or off")]
pub struct InvalidThirdParty(pub String);

/// What the address-based sources say about a client, independent of the location. Each
/// field is only set when the module has the source configured at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reputation {
    pub tor: bool,
    pub proxy_or_hosting: bool,
    pub spammer: bool,
    /// ip-api has not answered about this address yet.
    pub ipapi_pending: bool,
    /// StopForumSpam has not answered about this address yet.
    pub sfs_pending: bool,
}

impl Reputation {
    /// Adds what the per-address sources said: `answer` is a source's answer on record about
    /// the address, `asked` whether this location asks that source (only then can the answer
    /// still be pending for it).
    pub fn read_answers(
        &mut self,
        answer: impl Fn(Source) -> Answer,
        asked: impl Fn(Source) -> bool,
    ) {
        self.proxy_or_hosting = answer(Source::IpApi) == Answer::Suspicious;
        self.spammer = answer(Source::StopForumSpam) == Answer::Suspicious;
        self.ipapi_pending = asked(Source::IpApi) && answer(Source::IpApi) == Answer::Asked;
        self.sfs_pending =
            asked(Source::StopForumSpam) && answer(Source::StopForumSpam) == Answer::Asked;
    }
}

/// What a CrowdSec decision on the client asks for (after `fallback=` for unknown types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remediation {
    /// The block page, whatever the location's action (but `let`).
    Ban,
    /// The captcha; a valid pass lets the client in. A `block` location blocks instead.
    Captcha,
}

/// What the location's own lists and rules say about the client (`captchaify_allow`,
/// `captchaify_deny`, country and AS-number rules). Recomputed for every location a request
/// passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub allowed: bool,
    pub denied: bool,
    /// The action a country or AS-number rule prescribes for this client here.
    pub rule: Option<Action>,
}

impl Standing {
    /// What a location's allow and deny lists and its matching country or AS-number rule say
    /// about an address.
    pub fn of(
        address: std::net::IpAddr,
        allow: Option<&IpSet>,
        deny: Option<&IpSet>,
        rule: Option<Action>,
    ) -> Standing {
        let listed = |set: Option<&IpSet>| set.is_some_and(|s| s.contains(address));
        Standing {
            allowed: listed(allow),
            denied: listed(deny),
            rule,
        }
    }
}

/// What a location asks of its clients: its action and which sources of suspicion count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationPolicy {
    pub action: Action,
    /// Crawler user agents count as suspicious (`captchaify_block_crawler`).
    pub block_crawler: bool,
    /// The hardness a pass must have been earned at to open this location.
    pub hardness: Hardness,
    /// A pass in the `captchaify=` URL argument counts (`captchaify_without_cookies on`).
    pub accept_url_pass: bool,
    /// The location is under attack: all its clients together went over
    /// `captchaify_max_rate_limit`, and every unverified client gets the captcha.
    pub under_attack: bool,
    /// The third-party sources that count here.
    pub third_parties: ThirdParties,
    /// A client whose address the per-address sources have not answered about yet gets the
    /// captcha (`captchaify_lookup_pending captcha`) rather than passing.
    pub pending_is_suspicious: bool,
    /// Verified search-engine crawlers pass, fake ones are suspicious
    /// (`captchaify_verified_crawlers on`).
    pub verified_crawlers: bool,
    /// CrowdSec's decisions apply here (`captchaify_crowdsec`, on wherever a Local API is
    /// configured).
    pub crowdsec: bool,
    /// Every client without a pass gets at least the captcha, as under attack: what a bad
    /// value of `captchaify_action $var` makes of `block` (see [`variable`]), so that neither
    /// a suspicious client (blocked) nor an unsuspicious one (challenged) gets in unchecked.
    pub challenge_unverified: bool,
}

impl LocationPolicy {
    /// Whether the verdict depends on the client at all (`let` passes everyone unseen).
    pub fn needs_facts(&self) -> bool {
        self.action != Action::Let
    }
}

/// What the module knows about the client of one request, independent of the location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientFacts {
    /// The user agent is a known crawler, bot or HTTP library, or is missing.
    pub crawler: bool,
    /// The hardness of the valid pass in the cookie, if there is one.
    pub cookie_pass: Option<Hardness>,
    /// The hardness of the valid pass in the URL argument, if there is one.
    pub url_pass: Option<Hardness>,
    /// The client gave too many wrong answers within the failure window.
    pub failed_too_often: bool,
    /// The client's next wrong answer blocks it (its last try): its captcha page says so.
    pub last_try: bool,
    /// The keyed hash of the pass token that verified the client, for per-token rate limits.
    pub pass_key: Option<[u8; 16]>,
    /// What the address-based sources say.
    pub reputation: Reputation,
    /// What this location's lists and rules say (set anew at every location).
    pub standing: Standing,
    /// Whether the search-engine crawler the user agent claims is real, when it claims one
    /// and the module checked.
    pub crawler_check: Option<verified::Verification>,
    /// What CrowdSec's decisions on the address ask for, when it has one in force.
    pub crowdsec: Option<Remediation>,
}

impl ClientFacts {
    /// Whether the client holds a pass that opens this location.
    pub fn verified(&self, policy: &LocationPolicy) -> bool {
        let opens = |pass: Option<Hardness>| pass.is_some_and(|h| h >= policy.hardness);
        opens(self.cookie_pass) || (policy.accept_url_pass && opens(self.url_pass))
    }

    /// What the crawler check means here.
    pub fn crawler_treatment(&self, policy: &LocationPolicy) -> verified::Treatment {
        self.crawler_check
            .map_or(verified::Treatment::UserAgentRule, |v| {
                verified::treatment(v, policy.verified_crawlers)
            })
    }

    /// The CrowdSec decision that counts at this location.
    pub fn remediation(&self, policy: &LocationPolicy) -> Option<Remediation> {
        self.crowdsec.filter(|_| policy.crowdsec)
    }

    /// Whether the request counts against the rate limits. An address on the allow list is
    /// not counted: it passes everything. Nor is one that CrowdSec bans here: it is blocked
    /// whatever its rate, and not reported again for flooding.
    pub fn counted(&self, policy: &LocationPolicy) -> bool {
        !(self.standing.allowed || self.remediation(policy) == Some(Remediation::Ban))
    }

    /// Why the client looks like a bot under this policy, if it does.
    pub fn suspicion(&self, policy: &LocationPolicy) -> Option<Suspicion> {
        let sources = policy.third_parties;
        let rep = &self.reputation;
        let pending = (sources.has(Source::IpApi) && rep.ipapi_pending)
            || (sources.has(Source::StopForumSpam) && rep.sfs_pending);
        if self.failed_too_often {
            Some(Suspicion::FailedChallenges)
        } else if self.standing.denied {
            Some(Suspicion::DenyList)
        } else if sources.has(Source::Tor) && rep.tor {
            Some(Suspicion::TorExit)
        } else if sources.has(Source::IpApi) && rep.proxy_or_hosting {
            Some(Suspicion::ProxyOrHosting)
        } else if sources.has(Source::StopForumSpam) && rep.spammer {
            Some(Suspicion::Spammer)
        } else if self.crawler_treatment(policy) == verified::Treatment::Suspicious {
            Some(Suspicion::FakeCrawler)
        } else if policy.block_crawler && self.crawler {
            Some(Suspicion::CrawlerUserAgent)
        } else if policy.pending_is_suspicious && pending {
            Some(Suspicion::LookupPending)
        } else {
            None
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Block,
    Challenge,
    /// Over the client's rate limit (decided before the policy is asked).
    RateLimited,
}

/// Decides what happens to a client at a location.
///
/// `block` does not look at verification: a suspicious client stays suspicious after solving
/// a captcha somewhere else, and a `block` location promises no captcha. A client that gave
/// too many wrong answers is blocked everywhere but on `let` locations until its failure
/// window ends: it had its chances.
///
/// An address on the location's allow list passes everything but its rate limit (checked
/// before this); a country or AS-number rule replaces the location's action for the clients
/// it matches. An address only waiting for a lookup is never blocked, at most challenged.
///
/// A CrowdSec `ban` blocks at every location but `let` (and those that opt out with
/// `captchaify_crowdsec off`); a CrowdSec `captcha` asks for a pass, which a `block` location
/// cannot offer, so it blocks there. Only the allow list beats them.
///
/// Under attack every location but `let` behaves like `fight` for clients without a pass,
/// except that `block` still blocks the suspicious ones: a flood is answered with captchas,
/// which cost a person a few seconds and a bot its run, while verified clients keep passing.
pub fn decide(policy: &LocationPolicy, facts: &ClientFacts) -> Verdict {
    verdict(
        policy,
        facts,
        facts.suspicion(policy),
        facts.remediation(policy),
    )
}

/// [`decide`] with the client's suspicion and CrowdSec remediation under this policy already
/// worked out (so that [`evaluate`] works them out once).
fn verdict(
    policy: &LocationPolicy,
    facts: &ClientFacts,
    suspicion: Option<Suspicion>,
    remediation: Option<Remediation>,
) -> Verdict {
    let action = facts.standing.rule.unwrap_or(policy.action);
    match action {
        Action::Let => Verdict::Pass,
        _ if facts.standing.allowed => Verdict::Pass,
        _ if remediation == Some(Remediation::Ban) => Verdict::Block,
        _ if suspicion == Some(Suspicion::FailedChallenges) => Verdict::Block,
        Action::Block if facts.standing.rule.is_some() => Verdict::Block,
        Action::Block if remediation == Some(Remediation::Captcha) => Verdict::Block,
        _ if remediation == Some(Remediation::Captcha) && !facts.verified(policy) => {
            Verdict::Challenge
        }
        _ if facts.crawler_treatment(policy) == verified::Treatment::Pass => Verdict::Pass,
        Action::Block if suspicion == Some(Suspicion::LookupPending) => {
            if facts.verified(policy) {
                Verdict::Pass
            } else {
                Verdict::Challenge
            }
        }
        Action::Block if suspicion.is_some() => Verdict::Block,
        _ if (policy.under_attack || policy.challenge_unverified) && !facts.verified(policy) => {
            Verdict::Challenge
        }
        Action::Block => Verdict::Pass,
        Action::Fight | Action::Captcha if facts.verified(policy) => Verdict::Pass,
        Action::Fight => Verdict::Challenge,
        Action::Captcha if suspicion.is_some() => Verdict::Challenge,
        Action::Captcha => Verdict::Pass,
    }
}

/// What the rate limits said about one request (counted once per request, see
/// [`ClientFacts::counted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    /// `Retry-After` seconds when the client (or its pass token) is over its limit.
    pub retry_after: Option<u64>,
    /// All the location's clients together are over `captchaify_max_rate_limit`.
    pub under_attack: bool,
}

/// The whole decision for one request at one location, as the glue carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Why the client looks like a bot, for the block page (none when rate-limited: the
    /// policy was not asked).
    pub suspicion: Option<Suspicion>,
    /// The CrowdSec decision that counted here, for the log line.
    pub crowdsec: Option<Remediation>,
    /// Why the client is blocked, when the verdict is a block (dry run or not): for the
    /// block page and the log line.
    pub block_reason: Option<BlockReason>,
    /// `Retry-After` seconds of a rate-limited client.
    pub retry_after: Option<u64>,
}

/// Decides a request, the one way both the access handler and the subrequest check do: a
/// client over its rate limit is refused before the policy is asked; otherwise the policy
/// decides (see [`decide`]) with the location under attack when the rates say so. A `let`
/// location decides nothing about its client: pass default facts and rates.
pub fn evaluate(
    policy: &LocationPolicy,
    facts: &ClientFacts,
    rates: Rates,
    dry_run: bool,
) -> Decision {
    let policy = LocationPolicy {
        under_attack: rates.under_attack,
        ..*policy
    };
    let crowdsec = facts.remediation(&policy);
    let (verdict, suspicion) = match rates.retry_after {
        Some(_) => (Verdict::RateLimited, None),
        None => {
            let suspicion = facts.suspicion(&policy);
            (verdict(&policy, facts, suspicion, crowdsec), suspicion)
        }
    };
    let block_reason =
        (verdict == Verdict::Block).then(|| BlockReason::of(facts, suspicion, crowdsec));
    Decision {
        outcome: Outcome {
            verdict,
            dry_run,
            under_attack: rates.under_attack,
        },
        suspicion,
        crowdsec,
        block_reason,
        retry_after: rates.retry_after,
    }
}

/// A verdict that keeps the client from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Block,
    Challenge,
    RateLimited,
}

/// A verdict as it is carried out: dry run logs and exposes it without enforcing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub dry_run: bool,
    /// The location was under attack when it decided.
    pub under_attack: bool,
}

impl Outcome {
    /// What the module answers instead of the content, if it answers at all.
    pub fn enforced(self) -> Option<Refusal> {
        match self.verdict {
            _ if self.dry_run => None,
            Verdict::Pass => None,
            Verdict::Block => Some(Refusal::Block),
            Verdict::Challenge => Some(Refusal::Challenge),
            Verdict::RateLimited => Some(Refusal::RateLimited),
        }
    }

    /// The value of `$captchaify_status`: the verdict, `_UNDER_ATTACK` while the location is
    /// under attack, and `_DRY_RUN` for a refusal that was not carried out.
    pub const fn status(self) -> &'static str {
        match (self.verdict, self.under_attack, self.dry_run) {
            (Verdict::Pass, false, _) => "PASS",
            (Verdict::Pass, true, _) => "PASS_UNDER_ATTACK",
            (Verdict::Block, false, false) => "BLOCK",
            (Verdict::Block, false, true) => "BLOCK_DRY_RUN",
            (Verdict::Block, true, false) => "BLOCK_UNDER_ATTACK",
            (Verdict::Block, true, true) => "BLOCK_UNDER_ATTACK_DRY_RUN",
            (Verdict::Challenge, false, false) => "CHALLENGE",
            (Verdict::Challenge, false, true) => "CHALLENGE_DRY_RUN",
            (Verdict::Challenge, true, false) => "CHALLENGE_UNDER_ATTACK",
            (Verdict::Challenge, true, true) => "CHALLENGE_UNDER_ATTACK_DRY_RUN",
            (Verdict::RateLimited, false, false) => "RATE_LIMITED",
            (Verdict::RateLimited, false, true) => "RATE_LIMITED_DRY_RUN",
            (Verdict::RateLimited, true, false) => "RATE_LIMITED_UNDER_ATTACK",
            (Verdict::RateLimited, true, true) => "RATE_LIMITED_UNDER_ATTACK_DRY_RUN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUMAN: ClientFacts = ClientFacts {
        crawler: false,
        cookie_pass: None,
        url_pass: None,
        failed_too_often: false,
        last_try: false,
        pass_key: None,
        reputation: Reputation {
            tor: false,
            proxy_or_hosting: false,
            spammer: false,
            ipapi_pending: false,
            sfs_pending: false,
        },
        standing: Standing {
            allowed: false,
            denied: false,
            rule: None,
        },
        crawler_check: None,
        crowdsec: None,
    };
    const BOT: ClientFacts = ClientFacts {
        crawler: true,
        ..HUMAN
    };
    const VERIFIED_HUMAN: ClientFacts = ClientFacts {
        cookie_pass: Some(Hardness::NORMAL),
        ..HUMAN
    };
    const VERIFIED_BOT: ClientFacts = ClientFacts {
        cookie_pass: Some(Hardness::NORMAL),
        ..BOT
    };

    fn policy(action: Action, block_crawler: bool) -> LocationPolicy {
        LocationPolicy {
            action,
            block_crawler,
            hardness: Hardness::NORMAL,
            accept_url_pass: false,
            under_attack: false,
            third_parties: ThirdParties::ALL,
            pending_is_suspicious: false,
            verified_crawlers: false,
            crowdsec: true,
            challenge_unverified: false,
        }
    }

    /// What a bad value of `captchaify_action $var` becomes: `block` for suspicious clients,
    /// the captcha for everyone else without a pass; nobody unchecked gets in.
    #[test]
    fn the_strictest_fallback_blocks_the_suspicious_and_challenges_the_rest() {
        let strictest = LocationPolicy {
            challenge_unverified: true,
            ..policy(Action::Block, true)
        };
        assert_eq!(decide(&strictest, &BOT), Verdict::Block);
        assert_eq!(decide(&strictest, &VERIFIED_BOT), Verdict::Block);
        assert_eq!(decide(&strictest, &HUMAN), Verdict::Challenge);
        assert_eq!(decide(&strictest, &VERIFIED_HUMAN), Verdict::Pass);
        // Plain `block` lets the unsuspicious client through: the difference.
        assert_eq!(decide(&policy(Action::Block, true), &HUMAN), Verdict::Pass);
    }

    /// The one decision both handlers take: the rate limits first, then the policy, under
    /// attack as the rates say, dry run carried through.
    #[test]
    fn evaluate_puts_the_rate_limit_first_and_applies_the_attack() {
        let captcha = policy(Action::Captcha, true);
        let over = Rates {
            retry_after: Some(7),
            under_attack: false,
        };
        // Over its limit: refused before the policy is asked, even a verified client.
        for facts in [HUMAN, BOT, VERIFIED_HUMAN] {
            let d = evaluate(&captcha, &facts, over, false);
            assert_eq!(d.outcome.verdict, Verdict::RateLimited);
            assert_eq!(d.retry_after, Some(7));
            assert_eq!(d.suspicion, None);
            assert_eq!(d.outcome.enforced(), Some(Refusal::RateLimited));
        }
        // Within it: the policy decides, and says why a bot looks like one.
        let d = evaluate(&captcha, &BOT, Rates::default(), false);
        assert_eq!(d.outcome.verdict, Verdict::Challenge);
        assert_eq!(d.suspicion, Some(Suspicion::CrawlerUserAgent));
        assert_eq!(d.retry_after, None);
        assert_eq!(
            evaluate(&captcha, &HUMAN, Rates::default(), false)
                .outcome
                .verdict,
            Verdict::Pass
        );
        // Under attack: every client without a pass gets the captcha, verified ones pass,
        // and the outcome says so (`$captchaify_status`).
        let attack = Rates {
            retry_after: None,
            under_attack: true,
        };
        let d = evaluate(&captcha, &HUMAN, attack, false);
        assert_eq!(d.outcome.verdict, Verdict::Challenge);
        assert_eq!(d.outcome.status(), "CHALLENGE_UNDER_ATTACK");
        let d = evaluate(&captcha, &VERIFIED_HUMAN, attack, false);
        assert_eq!(d.outcome.status(), "PASS_UNDER_ATTACK");
        // The location's own policy value of under_attack does not count: the rates do.
        let stale = LocationPolicy {
            under_attack: true,
            ..captcha
        };
        assert_eq!(
            evaluate(&stale, &HUMAN, Rates::default(), false)
                .outcome
                .verdict,
            Verdict::Pass
        );
        // Dry run: decided and reported, not enforced.
        let d = evaluate(&captcha, &BOT, Rates::default(), true);
        assert_eq!(d.outcome.status(), "CHALLENGE_DRY_RUN");
        assert_eq!(d.outcome.enforced(), None);
        // A `let` location, with nothing gathered, passes.
        let d = evaluate(
            &policy(Action::Let, true),
            &ClientFacts::default(),
            Rates::default(),
            false,
        );
        assert_eq!(d.outcome.verdict, Verdict::Pass);
        assert_eq!(d.suspicion, None);
        // The CrowdSec decision that counted is reported for the log, and only where it applies.
        let banned = ClientFacts {
            crowdsec: Some(Remediation::Ban),
            ..HUMAN
        };
        let d = evaluate(&captcha, &banned, Rates::default(), false);
        assert_eq!(
            (d.outcome.verdict, d.crowdsec),
            (Verdict::Block, Some(Remediation::Ban))
        );
        let opted_out = LocationPolicy {
            crowdsec: false,
            ..captcha
        };
        let d = evaluate(&opted_out, &banned, Rates::default(), false);
        assert_eq!((d.outcome.verdict, d.crowdsec), (Verdict::Pass, None));
    }

    #[test]
    fn standing_reads_the_lists_and_keeps_the_rule() {
        use crate::reputation::ranges::parse_entry;
        let allow = IpSet::new([parse_entry("192.0.2.0/24").unwrap()]);
        let deny = IpSet::new([parse_entry("2001:db8::/32").unwrap()]);
        let at = |a: &str, rule| Standing::of(a.parse().unwrap(), Some(&allow), Some(&deny), rule);
        assert_eq!(
            at("192.0.2.7", None),
            Standing {
                allowed: true,
                denied: false,
                rule: None
            }
        );
        assert_eq!(
            at("2001:db8::1", Some(Action::Block)),
            Standing {
                allowed: false,
                denied: true,
                rule: Some(Action::Block)
            }
        );
        assert_eq!(at("198.51.100.1", None), Standing::default());
        // No lists: nobody is on them.
        let bare = Standing::of("192.0.2.7".parse().unwrap(), None, None, None);
        assert_eq!(bare, Standing::default());
    }

    /// The allow list and a CrowdSec ban keep a request out of the rate limits.
    #[test]
    fn allowed_and_banned_clients_are_not_counted() {
        let captcha = policy(Action::Captcha, false);
        assert!(HUMAN.counted(&captcha));
        assert!(BOT.counted(&captcha));
        let allowed = ClientFacts {
            standing: Standing {
                allowed: true,
                ..Standing::default()
            },
            ..BOT
        };
        assert!(!allowed.counted(&captcha));
        let banned = ClientFacts {
            crowdsec: Some(Remediation::Ban),
            ..HUMAN
        };
        assert!(!banned.counted(&captcha));
        // Where CrowdSec does not apply, its ban does not count, and the client is counted.
        let opted_out = LocationPolicy {
            crowdsec: false,
            ..captcha
        };
        assert!(banned.counted(&opted_out));
        // A CrowdSec captcha does not keep the client out of the limits.
        let captcha_decision = ClientFacts {
            crowdsec: Some(Remediation::Captcha),
            ..HUMAN
        };
        assert!(captcha_decision.counted(&captcha));
    }

    /// Every address-based source marks the client suspicious: captcha and block change
    /// their verdict, let does not; sources the location does not listen to do not count.
    #[test]
    fn reputation_sources_change_captcha_and_block_but_not_let() {
        let flagged = [
            Reputation {
                tor: true,
                ..HUMAN.reputation
            },
            Reputation {
                proxy_or_hosting: true,
                ..HUMAN.reputation
            },
            Reputation {
                spammer: true,
                ..HUMAN.reputation
            },
        ];
        let bits = Source::ALL.map(Source::bit);
        for (reputation, bit) in flagged.into_iter().zip(bits) {
            let facts = ClientFacts {
                reputation,
                ..HUMAN
            };
            assert_eq!(
                decide(&policy(Action::Captcha, true), &facts),
                Verdict::Challenge
            );
            assert_eq!(decide(&policy(Action::Block, true), &facts), Verdict::Block);
            assert_eq!(decide(&policy(Action::Let, true), &facts), Verdict::Pass);
            assert_eq!(
                decide(&policy(Action::Captcha, true), &HUMAN),
                Verdict::Pass
            );
            // A pass lets a suspicious client through captcha, not through block.
            let verified = ClientFacts {
                cookie_pass: Some(Hardness::NORMAL),
                ..facts
            };
            assert_eq!(
                decide(&policy(Action::Captcha, true), &verified),
                Verdict::Pass
            );
            assert_eq!(
                decide(&policy(Action::Block, true), &verified),
                Verdict::Block
            );
            let deaf = LocationPolicy {
                third_parties: ThirdParties(ThirdParties::ALL.0 & !bit),
                ..policy(Action::Block, true)
            };
            assert_eq!(decide(&deaf, &facts), Verdict::Pass);
            assert_eq!(
                decide(
                    &LocationPolicy {
                        third_parties: ThirdParties::NONE,
                        ..deaf
                    },
                    &facts
                ),
                Verdict::Pass
            );
        }
    }

    #[test]
    fn lists_allow_beats_everything_deny_is_suspicion() {
        let denied = ClientFacts {
            standing: Standing {
                denied: true,
                ..HUMAN.standing
            },
            ..HUMAN
        };
        assert_eq!(
            decide(&policy(Action::Captcha, true), &denied),
            Verdict::Challenge
        );
        assert_eq!(
            decide(&policy(Action::Block, true), &denied),
            Verdict::Block
        );
        assert_eq!(decide(&policy(Action::Let, true), &denied), Verdict::Pass);
        assert_eq!(
            denied.suspicion(&policy(Action::Block, true)),
            Some(Suspicion::DenyList)
        );
        let allowed_bot = ClientFacts {
            standing: Standing {
                allowed: true,
                denied: true,
                rule: Some(Action::Block),
            },
            reputation: Reputation {
                tor: true,
                ..HUMAN.reputation
            },
            ..BOT
        };
        for action in [Action::Let, Action::Block, Action::Fight, Action::Captcha] {
            let mut p = policy(action, true);
            assert_eq!(decide(&p, &allowed_bot), Verdict::Pass, "{action}");
            p.under_attack = true;
            assert_eq!(
                decide(&p, &allowed_bot),
                Verdict::Pass,
                "{action} under attack"
            );
        }
        // Too many failures are not forgiven by suspicion sources but are by the allow list.
        let failed = ClientFacts {
            failed_too_often: true,
            ..allowed_bot
        };
        assert_eq!(
            decide(&policy(Action::Captcha, true), &failed),
            Verdict::Pass
        );
    }

    #[test]
    fn country_and_asn_rules_replace_the_action() {
        let rule = |rule| ClientFacts {
            standing: Standing {
                rule: Some(rule),
                ..HUMAN.standing
            },
            ..HUMAN
        };
        // A rule's block blocks outright, verified or not.
        assert_eq!(
            decide(&policy(Action::Captcha, true), &rule(Action::Block)),
            Verdict::Block
        );
        let verified = ClientFacts {
            cookie_pass: Some(Hardness::HARD),
            ..rule(Action::Block)
        };
        assert_eq!(
            decide(&policy(Action::Let, true), &verified),
            Verdict::Block
        );
        let fought = ClientFacts {
            cookie_pass: Some(Hardness::HARD),
            ..rule(Action::Fight)
        };
        assert_eq!(decide(&policy(Action::Block, true), &fought), Verdict::Pass);
        assert_eq!(
            decide(&policy(Action::Captcha, true), &rule(Action::Fight)),
            Verdict::Challenge
        );
        assert_eq!(
            decide(
                &policy(Action::Block, true),
                &ClientFacts {
                    crawler: true,
                    ..rule(Action::Let)
                }
            ),
            Verdict::Pass
        );
        // A rule is the action for the clients it matches, even at a `let` location.
        assert_eq!(
            decide(&policy(Action::Let, true), &rule(Action::Fight)),
            Verdict::Challenge
        );
    }

    #[test]
    fn pending_lookups_challenge_only_when_asked_to_and_never_block() {
        let pending = ClientFacts {
            reputation: Reputation {
                ipapi_pending: true,
                ..HUMAN.reputation
            },
            ..HUMAN
        };
        assert_eq!(
            decide(&policy(Action::Captcha, true), &pending),
            Verdict::Pass
        );
        assert_eq!(
            decide(&policy(Action::Block, true), &pending),
            Verdict::Pass
        );
        let strict = |action| LocationPolicy {
            pending_is_suspicious: true,
            ..policy(action, true)
        };
        assert_eq!(
            decide(&strict(Action::Captcha), &pending),
            Verdict::Challenge
        );
        assert_eq!(decide(&strict(Action::Block), &pending), Verdict::Challenge);
        let verified = ClientFacts {
            cookie_pass: Some(Hardness::NORMAL),
            ..pending
        };
        assert_eq!(decide(&strict(Action::Block), &verified), Verdict::Pass);
        // A source the location does not listen to is not waited for.
        let deaf = LocationPolicy {
            third_parties: ThirdParties::of(&[Source::Tor]),
            ..strict(Action::Captcha)
        };
        assert_eq!(decide(&deaf, &pending), Verdict::Pass);
    }

    #[test]
    fn verified_crawlers_pass_fakes_are_suspicious() {
        use verified::Verification::*;
        let claim = |v| ClientFacts {
            crawler_check: Some(v),
            ..BOT
        };
        let on = |action| LocationPolicy {
            verified_crawlers: true,
            ..policy(action, true)
        };
        assert_eq!(decide(&on(Action::Block), &claim(Verified)), Verdict::Pass);
        assert_eq!(decide(&on(Action::Fight), &claim(Verified)), Verdict::Pass);
        assert_eq!(decide(&on(Action::Block), &claim(Fake)), Verdict::Block);
        assert_eq!(
            claim(Fake).suspicion(&on(Action::Block)),
            Some(Suspicion::FakeCrawler)
        );
        // A fake is suspicious even where crawler user agents are not.
        let lenient = LocationPolicy {
            block_crawler: false,
            ..on(Action::Captcha)
        };
        assert_eq!(decide(&lenient, &claim(Fake)), Verdict::Challenge);
        assert_eq!(decide(&lenient, &claim(Unknown)), Verdict::Pass);
        // Unknown falls back to the user-agent rule.
        assert_eq!(decide(&on(Action::Block), &claim(Unknown)), Verdict::Block);
        // Off: nothing changes for anyone.
        assert_eq!(
            decide(&policy(Action::Block, true), &claim(Verified)),
            Verdict::Block
        );
        assert_eq!(
            decide(&policy(Action::Block, false), &claim(Fake)),
            Verdict::Pass
        );
        // A verified crawler from a country a rule blocks is blocked.
        let ruled = ClientFacts {
            standing: Standing {
                rule: Some(Action::Block),
                ..HUMAN.standing
            },
            ..claim(Verified)
        };
        assert_eq!(decide(&on(Action::Captcha), &ruled), Verdict::Block);
    }

    #[test]
    fn third_parties_parse() {
        assert_eq!(ThirdParties::parse(&["off"]), Ok(ThirdParties::NONE));
        assert_eq!(
            ThirdParties::parse(&["stopforumspam", "tor"]),
            Ok(ThirdParties(5))
        );
        assert_eq!(
            ThirdParties::parse(&["tor", "ipapi", "stopforumspam"]),
            Ok(ThirdParties::ALL)
        );
        assert!(ThirdParties::parse(&["tor", "tor"]).is_err());
        assert!(ThirdParties::parse(&["tor", "off"]).is_err());
        assert!(ThirdParties::parse(&["spamhaus"]).is_err());
        assert!(ThirdParties::parse(&[]).is_err());
    }

    /// The default asks nobody about a visitor: the Tor list is downloaded whole.
    #[test]
    fn the_default_sources_send_no_visitor_data() {
        let default = ThirdParties::default();
        assert_eq!(default, ThirdParties::of(&[Source::Tor]));
        for source in Source::ALL {
            assert_eq!(
                default.has(source),
                !Source::PER_ADDRESS.contains(&source),
                "{source:?} in the default"
            );
        }
    }

    /// Every way to the block page names its cause, the one `decide` acted on.
    #[test]
    fn a_block_says_why() {
        use BlockReason as R;
        let with = |f: fn(&mut ClientFacts)| {
            let mut facts = HUMAN;
            f(&mut facts);
            facts
        };
        let table: [(Action, ClientFacts, Option<BlockReason>); 12] = [
            (Action::Block, HUMAN, None),
            (
                Action::Block,
                BOT,
                Some(R::SuspiciousClient(Suspicion::CrawlerUserAgent)),
            ),
            (
                Action::Captcha,
                with(|f| f.standing.rule = Some(Action::Block)),
                Some(R::Network),
            ),
            (
                Action::Block,
                with(|f| f.standing.denied = true),
                Some(R::AddressList(Suspicion::DenyList)),
            ),
            (
                Action::Block,
                with(|f| f.reputation.tor = true),
                Some(R::AddressList(Suspicion::TorExit)),
            ),
            (
                Action::Block,
                with(|f| f.reputation.spammer = true),
                Some(R::AddressList(Suspicion::Spammer)),
            ),
            (
                Action::Captcha,
                with(|f| f.crowdsec = Some(Remediation::Ban)),
                Some(R::CrowdSec(Remediation::Ban)),
            ),
            (
                Action::Block,
                with(|f| f.crowdsec = Some(Remediation::Captcha)),
                Some(R::CrowdSec(Remediation::Captcha)),
            ),
            (
                Action::Fight,
                with(|f| f.failed_too_often = true),
                Some(R::TooManyFailures),
            ),
            // The failures come before the rule, the ban before both.
            (
                Action::Captcha,
                with(|f| {
                    f.failed_too_often = true;
                    f.standing.rule = Some(Action::Block);
                }),
                Some(R::TooManyFailures),
            ),
            (
                Action::Captcha,
                with(|f| {
                    f.failed_too_often = true;
                    f.crowdsec = Some(Remediation::Ban);
                }),
                Some(R::CrowdSec(Remediation::Ban)),
            ),
            (Action::Captcha, BOT, None),
        ];
        for (action, facts, reason) in table {
            let d = evaluate(&policy(action, true), &facts, Rates::default(), false);
            assert_eq!(d.block_reason, reason, "{action} {facts:?}");
            assert_eq!(d.outcome.verdict == Verdict::Block, reason.is_some());
            // Dry run names it too, for the log line.
            let dry = evaluate(&policy(action, true), &facts, Rates::default(), true);
            assert_eq!(dry.block_reason, reason);
        }
        assert_eq!(R::Network.as_str(), "country or AS-number rule");
        assert_eq!(R::AddressList(Suspicion::DenyList).as_str(), "deny list");
        assert_eq!(R::CrowdSec(Remediation::Ban).as_str(), "CrowdSec ban");
    }

    #[test]
    fn every_action_against_every_kind_of_client() {
        use Verdict::*;
        let table = [
            (Action::Let, [Pass, Pass, Pass, Pass]),
            (Action::Block, [Pass, Block, Pass, Block]),
            (Action::Fight, [Challenge, Challenge, Pass, Pass]),
            (Action::Captcha, [Pass, Challenge, Pass, Pass]),
        ];
        for (action, expected) in table {
            let p = policy(action, true);
            let got = [HUMAN, BOT, VERIFIED_HUMAN, VERIFIED_BOT].map(|f| decide(&p, &f));
            assert_eq!(got, expected, "action {action}");
        }
    }

    #[test]
    fn crawlers_are_not_suspicious_without_block_crawler() {
        assert_eq!(
            BOT.suspicion(&policy(Action::Captcha, true)),
            Some(Suspicion::CrawlerUserAgent)
        );
        assert_eq!(BOT.suspicion(&policy(Action::Captcha, false)), None);
        assert_eq!(decide(&policy(Action::Block, false), &BOT), Verdict::Pass);
        assert_eq!(decide(&policy(Action::Captcha, false), &BOT), Verdict::Pass);
        assert_eq!(
            decide(&policy(Action::Fight, false), &BOT),
            Verdict::Challenge
        );
        assert!(!policy(Action::Let, true).needs_facts());
        assert!(policy(Action::Captcha, true).needs_facts());
    }

    #[test]
    fn a_pass_opens_locations_up_to_its_hardness() {
        let easy = ClientFacts {
            cookie_pass: Some(Hardness::EASY),
            ..HUMAN
        };
        let hard = ClientFacts {
            cookie_pass: Some(Hardness::HARD),
            ..HUMAN
        };
        let mut p = policy(Action::Fight, true);
        assert_eq!(decide(&p, &easy), Verdict::Challenge);
        assert_eq!(decide(&p, &hard), Verdict::Pass);
        p.hardness = Hardness::EASY;
        assert_eq!(decide(&p, &easy), Verdict::Pass);
    }

    #[test]
    fn url_passes_count_only_where_accepted() {
        let facts = ClientFacts {
            url_pass: Some(Hardness::HARD),
            ..HUMAN
        };
        let mut p = policy(Action::Fight, true);
        assert_eq!(decide(&p, &facts), Verdict::Challenge);
        p.accept_url_pass = true;
        assert_eq!(decide(&p, &facts), Verdict::Pass);
    }

    #[test]
    fn too_many_failures_block_everywhere_but_let() {
        let failed = ClientFacts {
            failed_too_often: true,
            ..VERIFIED_HUMAN
        };
        for action in [Action::Block, Action::Fight, Action::Captcha] {
            assert_eq!(
                decide(&policy(action, false), &failed),
                Verdict::Block,
                "{action}"
            );
        }
        assert_eq!(decide(&policy(Action::Let, true), &failed), Verdict::Pass);
    }

    #[test]
    fn under_attack_unverified_clients_get_the_captcha_everywhere_but_let() {
        use Verdict::*;
        let table = [
            (Action::Let, [Pass, Pass, Pass, Pass]),
            (Action::Block, [Challenge, Block, Pass, Block]),
            (Action::Fight, [Challenge, Challenge, Pass, Pass]),
            (Action::Captcha, [Challenge, Challenge, Pass, Pass]),
        ];
        for (action, expected) in table {
            let p = LocationPolicy {
                under_attack: true,
                ..policy(action, true)
            };
            let got = [HUMAN, BOT, VERIFIED_HUMAN, VERIFIED_BOT].map(|f| decide(&p, &f));
            assert_eq!(got, expected, "action {action}");
        }
        let easy = ClientFacts {
            cookie_pass: Some(Hardness::EASY),
            ..HUMAN
        };
        let p = LocationPolicy {
            under_attack: true,
            ..policy(Action::Captcha, true)
        };
        assert_eq!(
            decide(&p, &easy),
            Challenge,
            "a pass too easy for the location does not count"
        );
    }

    #[test]
    fn statuses_name_the_verdict_the_attack_and_the_dry_run() {
        let o = |verdict, under_attack, dry_run| {
            Outcome {
                verdict,
                dry_run,
                under_attack,
            }
            .status()
        };
        assert_eq!(o(Verdict::RateLimited, false, false), "RATE_LIMITED");
        assert_eq!(o(Verdict::RateLimited, false, true), "RATE_LIMITED_DRY_RUN");
        assert_eq!(o(Verdict::Challenge, true, false), "CHALLENGE_UNDER_ATTACK");
        assert_eq!(o(Verdict::Pass, true, true), "PASS_UNDER_ATTACK");
        assert_eq!(
            Outcome {
                verdict: Verdict::RateLimited,
                dry_run: true,
                under_attack: false
            }
            .enforced(),
            None
        );
        assert_eq!(
            Outcome {
                verdict: Verdict::RateLimited,
                dry_run: false,
                under_attack: true
            }
            .enforced(),
            Some(Refusal::RateLimited)
        );
    }

    #[test]
    fn actions_parse_exactly() {
        for action in [Action::Let, Action::Block, Action::Fight, Action::Captcha] {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        assert_eq!(
            "Fight".parse::<Action>(),
            Err(InvalidAction("Fight".into()))
        );
        assert!("".parse::<Action>().is_err());
        assert_eq!(Action::default(), Action::Captcha);
    }

    #[test]
    fn hardness_is_one_to_three() {
        assert_eq!("1".parse::<Hardness>().map(Hardness::get), Ok(1));
        assert_eq!("3".parse::<Hardness>().map(Hardness::get), Ok(3));
        assert_eq!(format!("{:>2}", Hardness::HARD), " 3");
        for bad in ["0", "4", "02", "two", "", "-1"] {
            assert!(bad.parse::<Hardness>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Hardness::default(), Hardness::NORMAL);
        assert!(Hardness::EASY < Hardness::HARD);
        // Only hardness 3 adds the spoken digits.
        assert!(!Hardness::EASY.has_audio());
        assert!(!Hardness::NORMAL.has_audio());
        assert!(Hardness::HARD.has_audio());
    }

    #[test]
    fn dry_run_never_enforces_but_reports() {
        let block = Outcome {
            verdict: Verdict::Block,
            dry_run: true,
            under_attack: false,
        };
        assert_eq!(block.enforced(), None);
        assert_eq!(block.status(), "BLOCK_DRY_RUN");
        let challenge = Outcome {
            verdict: Verdict::Challenge,
            dry_run: false,
            under_attack: false,
        };
        assert_eq!(challenge.enforced(), Some(Refusal::Challenge));
        assert_eq!(challenge.status(), "CHALLENGE");
        let pass = Outcome {
            verdict: Verdict::Pass,
            dry_run: true,
            under_attack: false,
        };
        assert_eq!((pass.enforced(), pass.status()), (None, "PASS"));
    }

    /// CrowdSec: a ban blocks everywhere but `let`, a captcha asks for a pass (a block
    /// location blocks), the allow list beats both, and `captchaify_crowdsec off` ignores them.
    #[test]
    fn crowdsec_decisions() {
        let banned = ClientFacts {
            crowdsec: Some(Remediation::Ban),
            ..HUMAN
        };
        let verified_banned = ClientFacts {
            crowdsec: Some(Remediation::Ban),
            ..VERIFIED_HUMAN
        };
        let captcha = ClientFacts {
            crowdsec: Some(Remediation::Captcha),
            ..HUMAN
        };
        let verified_captcha = ClientFacts {
            crowdsec: Some(Remediation::Captcha),
            ..VERIFIED_HUMAN
        };
        for action in [Action::Block, Action::Fight, Action::Captcha] {
            assert_eq!(
                decide(&policy(action, false), &banned),
                Verdict::Block,
                "{action}"
            );
            assert_eq!(
                decide(&policy(action, false), &verified_banned),
                Verdict::Block,
                "{action}: a pass does not lift a ban"
            );
        }
        assert_eq!(decide(&policy(Action::Let, true), &banned), Verdict::Pass);
        assert_eq!(
            decide(&policy(Action::Captcha, false), &captcha),
            Verdict::Challenge
        );
        assert_eq!(
            decide(&policy(Action::Fight, false), &captcha),
            Verdict::Challenge
        );
        assert_eq!(
            decide(&policy(Action::Block, false), &captcha),
            Verdict::Block
        );
        assert_eq!(
            decide(&policy(Action::Captcha, false), &verified_captcha),
            Verdict::Pass
        );
        assert_eq!(
            decide(&policy(Action::Fight, false), &verified_captcha),
            Verdict::Pass
        );
        assert_eq!(
            decide(&policy(Action::Block, false), &verified_captcha),
            Verdict::Block
        );
        let off = LocationPolicy {
            crowdsec: false,
            ..policy(Action::Captcha, false)
        };
        assert_eq!(decide(&off, &banned), Verdict::Pass);
        assert_eq!(decide(&off, &captcha), Verdict::Pass);
        let allowed = |facts: ClientFacts| ClientFacts {
            standing: Standing {
                allowed: true,
                ..facts.standing
            },
            ..facts
        };
        assert_eq!(
            decide(&policy(Action::Block, false), &allowed(banned)),
            Verdict::Pass
        );
        assert_eq!(
            decide(&policy(Action::Fight, false), &allowed(captcha)),
            Verdict::Pass
        );
        // A verified crawler still meets a CrowdSec captcha.
        let crawler = ClientFacts {
            crawler: true,
            crawler_check: Some(verified::Verification::Verified),
            crowdsec: Some(Remediation::Captcha),
            ..HUMAN
        };
        let with_crawlers = LocationPolicy {
            verified_crawlers: true,
            ..policy(Action::Captcha, true)
        };
        assert_eq!(decide(&with_crawlers, &crawler), Verdict::Challenge);
        assert_eq!(
            decide(
                &with_crawlers,
                &ClientFacts {
                    crowdsec: None,
                    ..crawler
                }
            ),
            Verdict::Pass
        );
    }

    #[test]
    fn precheck_modes() {
        assert_eq!("on".parse(), Ok(Precheck::On));
        assert_eq!("under_attack".parse(), Ok(Precheck::UnderAttack));
        assert_eq!("off".parse(), Ok(Precheck::Off));
        assert_eq!("On".parse::<Precheck>(), Err(InvalidPrecheck("On".into())));
        assert!(Precheck::On.applies(false) && Precheck::On.applies(true));
        assert!(!Precheck::Off.applies(false) && !Precheck::Off.applies(true));
        assert!(!Precheck::UnderAttack.applies(false) && Precheck::UnderAttack.applies(true));
        assert_eq!(Precheck::default(), Precheck::On);
    }

    #[test]
    fn reputation_reads_answers_and_pending_only_where_asked() {
        let answers = |ipapi, sfs| {
            move |source| match source {
                Source::Tor => Answer::Unknown,
                Source::IpApi => ipapi,
                Source::StopForumSpam => sfs,
            }
        };
        let mut rep = Reputation {
            tor: true,
            ..Reputation::default()
        };
        rep.read_answers(answers(Answer::Suspicious, Answer::Clean), |_| true);
        assert_eq!(
            rep,
            Reputation {
                tor: true,
                proxy_or_hosting: true,
                ..Reputation::default()
            }
        );
        let mut rep = Reputation::default();
        rep.read_answers(answers(Answer::Asked, Answer::Suspicious), |_| true);
        assert!(rep.ipapi_pending && rep.spammer && !rep.sfs_pending && !rep.proxy_or_hosting);
        // A source this location does not ask is never pending here.
        let mut rep = Reputation::default();
        rep.read_answers(answers(Answer::Asked, Answer::Asked), |s| {
            s == Source::IpApi
        });
        assert!(rep.ipapi_pending && !rep.sfs_pending);
        let mut rep = Reputation::default();
        rep.read_answers(answers(Answer::Unknown, Answer::Unknown), |_| true);
        assert_eq!(rep, Reputation::default());
    }
}
