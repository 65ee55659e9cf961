//! `FaultInjector` for the simulator: how each fault changes the model.

use super::Simulator;
use super::mirroring;
use super::model::FailRule;
use crate::faults::{Fault, FaultInjector};

impl FaultInjector for Simulator {
    /// One match arm per fault, each the few changes that fault makes to the model under one
    /// lock; the instance up/down watch is told after the lock is released.
    fn inject(&self, fault: Fault) -> Result<(), String> {
        let mut changed_up: Option<(String, bool)> = None;
        {
            let mut st = self.lock();
            let known = |st: &super::model::State, n: &str| {
                st.inst(n).is_some()
                    || st.instances.iter().any(|i| i.site.eq_ignore_ascii_case(n))
                    || st.shares.iter().any(|s| s.host.eq_ignore_ascii_case(n))
            };
            match fault {
                Fault::InstanceDown { instance } => {
                    let inst = st
                        .inst_mut(&instance)
                        .ok_or_else(|| format!("InstanceDown: unknown instance `{instance}`"))?;
                    inst.up = false;
                    let spids: Vec<i16> = inst.sessions.keys().copied().collect();
                    for s in spids {
                        inst.kill(s);
                    }
                    changed_up = Some((inst.name.clone(), false));
                }
                Fault::InstanceUp { instance } => {
                    let inst = st
                        .inst_mut(&instance)
                        .ok_or_else(|| format!("InstanceUp: unknown instance `{instance}`"))?;
                    inst.up = true;
                    changed_up = Some((inst.name.clone(), true));
                }
                Fault::Partition { between } => {
                    let (a, b) = between;
                    if a.is_empty() || b.is_empty() {
                        return Err("Partition: `between` needs two non-empty lists".into());
                    }
                    for n in a.iter().chain(b.iter()) {
                        if !known(&st, n) {
                            return Err(format!(
                                "Partition: `{n}` is not an instance, site or share host"
                            ));
                        }
                    }
                    st.partitions.push((a, b));
                }
                Fault::Heal => st.partitions.clear(),
                Fault::ShareDown { host } => {
                    if !st.shares.iter().any(|s| s.host.eq_ignore_ascii_case(&host)) {
                        return Err(format!("ShareDown: unknown share host `{host}`"));
                    }
                    if !st.shares_down.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
                        st.shares_down.push(host);
                    }
                }
                Fault::ShareUp { host } => {
                    if !st.shares.iter().any(|s| s.host.eq_ignore_ascii_case(&host)) {
                        return Err(format!("ShareUp: unknown share host `{host}`"));
                    }
                    st.shares_down.retain(|h| !h.eq_ignore_ascii_case(&host));
                }
                Fault::FailNext {
                    instance,
                    pattern,
                    regex,
                    error,
                } => {
                    if let Some(i) = &instance
                        && st.inst(i).is_none()
                    {
                        return Err(format!("FailNext: unknown instance `{i}`"));
                    }
                    if regex && let Err(e) = regex::Regex::new(&pattern) {
                        return Err(format!("FailNext: `pattern` is not a valid regex: {e}"));
                    }
                    if error <= 0 {
                        return Err("FailNext: `error` must be a positive error number".into());
                    }
                    st.fail_next.push(FailRule {
                        instance,
                        pattern,
                        regex,
                        error,
                    });
                }
                Fault::DatabaseRecoveryPending { instance, database } => {
                    let inst = st.inst_mut(&instance).ok_or_else(|| {
                        format!("DatabaseRecoveryPending: unknown instance `{instance}`")
                    })?;
                    let spids: Vec<i16> = inst.sessions_in(&database, None);
                    for s in spids {
                        inst.kill(s);
                    }
                    let db = inst.db_mut(&database).ok_or_else(|| {
                        format!("DatabaseRecoveryPending: no database `{database}` on `{instance}`")
                    })?;
                    db.state = super::model::DbState::RecoveryPending;
                }
                Fault::ClockChange {
                    instance,
                    utc_offset_minutes,
                } => {
                    if !super::topology::valid_utc_offset(utc_offset_minutes) {
                        return Err(format!(
                            "ClockChange: {utc_offset_minutes} minutes is not a whole number of \
                             quarter hours between -840 and 840"
                        ));
                    }
                    st.inst_mut(&instance)
                        .ok_or_else(|| format!("ClockChange: unknown instance `{instance}`"))?
                        .utc_offset_minutes = utc_offset_minutes;
                }
                Fault::Latency { statement, millis } => {
                    let mut latency = self.latency.write().unwrap_or_else(|p| p.into_inner());
                    if millis == 0 {
                        latency.remove(&statement);
                    } else {
                        latency.insert(statement, millis);
                    }
                }
            }
            mirroring::refresh(&mut st);
        }
        if let Some((name, up)) = changed_up {
            self.set_up(&name, up);
        }
        Ok(())
    }

    fn describe(&self) -> serde_json::Value {
        let st = self.lock();
        let instances: Vec<serde_json::Value> = st
            .instances
            .iter()
            .map(|i| {
                let dbs: Vec<serde_json::Value> = i
                    .databases
                    .iter()
                    .filter(|d| !d.is_system())
                    .map(|d| {
                        serde_json::json!({
                            "name": d.name,
                            "state": d.state.desc(),
                            "userAccess": d.access.desc(),
                            "recoveryModel": d.recovery,
                            "messages": d.rows.len(),
                            "mirroringRole": d.mirroring.as_ref().map(|m| m.role.desc()),
                            "mirroringState": d.mirroring.as_ref().map(|m| m.state.desc()),
                            "mirroringPartner": d.mirroring.as_ref().map(|m| m.partner_instance.clone()),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": i.name,
                    "site": i.site,
                    "listen": i.listen,
                    "up": i.up,
                    "sessions": i.sessions.len(),
                    "databases": dbs,
                })
            })
            .collect();
        serde_json::json!({
            "instances": instances,
            "shares": st.shares.iter().map(|s| format!("\\\\{}\\{}", s.host, s.share)).collect::<Vec<_>>(),
            "instancesDown": st.instances.iter().filter(|i| !i.up).map(|i| i.name.clone()).collect::<Vec<_>>(),
            "partitions": st.partitions,
            "sharesDown": st.shares_down,
            "failNext": st.fail_next,
            "latency": *self.latency.read().unwrap_or_else(|p| p.into_inner()),
        })
    }
}
