//! The safety invariants of failover (no statement to an unreachable instance, never a split
//! brain, never overwrite an ONLINE copy without a salvage backup, never recover a copy while
//! another is writable), as checks over observations and steps. The tests
//! assert them on every step the planner takes; the engine may assert them too before it sends.

use crate::api::PersistentChatPoolSpec;
use crate::observe::{DatabaseState, Observation};

use super::facts::{self, db, reachable};
use super::step::Step;

/// Two writable chat copies while the published list points at chat servers of a site that
/// holds either: the split brain the operator must never create.
pub fn split_brain(spec: &PersistentChatPoolSpec, obs: &Observation) -> Option<String> {
    let chat = &spec.databases.chat;
    let writable: Vec<(&str, &str)> = spec
        .instances()
        .filter_map(|(s, i)| {
            db(obs, &i.name, chat)
                .filter(|d| facts::is_writable(d) && facts::is_online(d))
                .map(|_| (s.name.as_str(), i.name.as_str()))
        })
        .collect();
    if writable.len() < 2 {
        return None;
    }
    let published = obs.published.as_ref()?;
    let pointed = writable.iter().any(|(site, _)| {
        spec.site(site).is_some_and(|s| {
            published
                .active_servers
                .iter()
                .any(|a| s.chat_servers.iter().any(|c| c.eq_ignore_ascii_case(a)))
        })
    });
    pointed.then(|| {
        format!(
            "{chat} is writable on {} while chat servers are published",
            writable
                .iter()
                .map(|(_, i)| *i)
                .collect::<Vec<_>>()
                .join(" and ")
        )
    })
}

/// The violations a step would commit if run against `before` (the observation it was planned
/// from). `after` is the observation once it ran.
pub fn step_violations(
    spec: &PersistentChatPoolSpec,
    before: &Observation,
    step: &Step,
    after: &Observation,
) -> Vec<String> {
    let mut out = Vec::new();
    let chat = &spec.databases.chat;
    for i in step.instances() {
        if !reachable(before, i) {
            out.push(format!("{} sends to unreachable {i}", step.name()));
        }
    }
    if split_brain(spec, before).is_none()
        && let Some(v) = split_brain(spec, after)
    {
        out.push(format!("{} created a split brain: {v}", step.name()));
    }
    if let Some((instance, database)) = step.overwrites()
        && let Some(d) = db(before, instance, database)
        && d.state == DatabaseState::Online
        && facts::salvage_of(before, instance, database, facts::position(d)).is_none()
    {
        out.push(format!(
            "{} overwrites ONLINE {database} on {instance} without an observed salvage backup",
            step.name()
        ));
    }
    if let Step::Recover {
        instance, database, ..
    } = step
        && database == chat
    {
        for (_, other) in spec.instances().filter(|(_, o)| o.name != *instance) {
            // The old primary: a writable copy (a fenced one is a stale copy, not a primary).
            if db(before, &other.name, chat)
                .is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
            {
                out.push(format!(
                    "Recover of {chat} on {instance} while {} holds it writable and reachable",
                    other.name
                ));
            }
        }
    }
    out
}

/// What must hold once the planner says Converged.
pub fn converged_violations(spec: &PersistentChatPoolSpec, obs: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    let chat = &spec.databases.chat;
    let Some(p) = spec.site(&spec.primary_site) else {
        return vec!["primary site missing".to_string()];
    };
    let ok = p.instances.iter().any(|i| {
        db(obs, &i.name, chat).is_some_and(|d| facts::is_writable(d) && facts::is_online(d))
    });
    if !ok {
        out.push(format!("{chat} on {} is not ONLINE and MULTI_USER", p.name));
    }
    for (s, i) in spec.instances().filter(|(s, _)| s.name != p.name) {
        if db(obs, &i.name, chat).is_some_and(|d| d.mirroring.is_some())
            || spec
                .databases
                .compliance
                .as_ref()
                .is_some_and(|c| db(obs, &i.name, c).is_some_and(|d| d.mirroring.is_some()))
        {
            out.push(format!("{} ({}) is a mirroring partner", i.name, s.name));
        }
    }
    if let Some(v) = split_brain(spec, obs) {
        out.push(v);
    }
    // A converged pool has one ONLINE chat copy: a fenced one left beside it is a copy a
    // person can set READ_WRITE again.
    let online: Vec<&str> = spec
        .instances()
        .filter(|(_, i)| db(obs, &i.name, chat).is_some_and(|d| d.state == DatabaseState::Online))
        .map(|(_, i)| i.name.as_str())
        .collect();
    if online.len() > 1 {
        out.push(format!("{chat} is ONLINE on {}", online.join(", ")));
    }
    // Rule 5 and 6: P's chat servers published, pool state from the home site.
    let published_ok = obs.published.as_ref().is_some_and(|pb| {
        pb.pool_state == facts::pool_state_for(spec, &p.name)
            && pb.active_servers.len() == p.chat_servers.len()
            && p.chat_servers
                .iter()
                .all(|c| pb.active_servers.iter().any(|a| a.eq_ignore_ascii_case(c)))
    });
    if !published_ok {
        out.push(format!(
            "{}'s chat servers are not what is published",
            p.name
        ));
    }
    // Rule 2: both databases mirrored inside a two-instance primary site.
    if p.instances.len() == 2 {
        for dbn in spec.database_names() {
            let mirrored = p.instances.iter().any(|i| {
                db(obs, &i.name, dbn).is_some_and(|d| {
                    d.state == DatabaseState::Online
                        && d.mirroring.as_ref().is_some_and(|m| {
                            m.role == crate::observe::MirroringRole::Principal
                                && p.instances
                                    .iter()
                                    .any(|o| o.name.eq_ignore_ascii_case(&m.partner_instance))
                        })
                })
            });
            if !mirrored {
                out.push(format!("{dbn} is not mirrored inside {}", p.name));
            }
        }
    }
    // Rule 3: log shipping P -> S configured on both sides, S's copy RESTORING.
    let p_names: Vec<&str> = p.instances.iter().map(|i| i.name.as_str()).collect();
    let secondary = spec
        .instances()
        .filter(|(s, _)| s.name != p.name)
        .find_map(|(_, i)| {
            let d = db(obs, &i.name, chat)?;
            let l = d.log_shipping_secondary.as_ref()?;
            (facts::is_plain_restoring(d)
                && p_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&l.primary_server)))
            .then_some(i.name.as_str())
        });
    match secondary {
        None => out.push(format!(
            "no RESTORING log-shipping secondary of {chat} outside {}",
            p.name
        )),
        Some(sec) => {
            let linked = p.instances.iter().any(|i| {
                db(obs, &i.name, chat)
                    .and_then(|d| d.log_shipping_primary.as_ref())
                    .is_some_and(|l| {
                        l.secondaries
                            .iter()
                            .any(|s| s.secondary_server.eq_ignore_ascii_case(sec))
                    })
            });
            if !linked {
                out.push(format!(
                    "no log-shipping primary row on {} links {sec}",
                    p.name
                ));
            }
        }
    }
    out
}
