//! Database mirroring statements: `ALTER DATABASE [db] SET PARTNER ...`. None of them takes a
//! variable, so the database name is bracket-quoted and the partner address is an `N'...'`
//! literal.

use super::codes::*;
use super::{Batch, Statement};
use crate::quote;

/// RemoveMirroring: `ALTER DATABASE [db] SET PARTNER OFF`, on either partner.
pub(super) fn partner_off(instance: &str, database: &str) -> Statement {
    Batch::new(&format!(
        "ALTER DATABASE {} SET PARTNER OFF",
        quote::ident(database)
    ))
    .on(
        instance,
        format!("remove database mirroring of {database} on {instance}"),
    )
    // The session is already gone (ended from either side).
    .done_if(&[NOT_MIRRORED])
    .retry_if(&[LOCK_NOT_PLACED])
}

/// The two partners of a mirroring session to establish.
pub(super) struct Partners<'a> {
    pub principal: &'a str,
    pub mirror: &'a str,
    pub database: &'a str,
    pub principal_endpoint: &'a str,
    pub mirror_endpoint: &'a str,
}

/// `SET PARTNER = N'<endpoint>'` on `instance`.
fn set_partner(instance: &str, database: &str, endpoint: &str, role: &str) -> Statement {
    Batch::new(&format!(
        "ALTER DATABASE {} SET PARTNER = {}",
        quote::ident(database),
        quote::nstring(endpoint)
    ))
    .on(
        instance,
        format!("on the {role} {instance}, set the mirroring partner of {database} to {endpoint}"),
    )
    // The copy is already in a mirroring session: this statement (or the whole step) ran
    // before. A session with another partner is the planner's to remove, not this step's.
    .done_if(&[IN_MIRRORING_SESSION])
    .retry_if(&[PARTNER_UNREACHABLE, LOCK_NOT_PLACED])
}

/// EstablishMirroring: the mirror first (it must name the principal before the principal can
/// name it), then the principal, then SAFETY FULL on the principal (only the principal may set
/// it; FULL is what makes a planned FAILOVER possible and every acknowledged write safe).
pub(super) fn establish(p: &Partners) -> Vec<Statement> {
    vec![
        set_partner(p.mirror, p.database, p.principal_endpoint, "mirror"),
        set_partner(p.principal, p.database, p.mirror_endpoint, "principal"),
        Batch::new(&format!(
            "ALTER DATABASE {} SET PARTNER SAFETY FULL",
            quote::ident(p.database)
        ))
        .on(
            p.principal,
            format!(
                "set mirroring safety FULL for {} on the principal {}",
                p.database, p.principal
            ),
        )
        .retry_if(&[LOCK_NOT_PLACED]),
    ]
}
