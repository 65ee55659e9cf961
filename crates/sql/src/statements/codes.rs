//! The SQL Server error numbers the statements name in `done_if` and `retry_if`, with the text
//! SQL Server sends (as `sys.messages` lists it).

/// 1416: Database "%.*ls" is not configured for database mirroring.
pub const NOT_MIRRORED: u32 = 1416;
/// 1418: The server network address "%.*ls" can not be reached or does not exist.
pub const PARTNER_UNREACHABLE: u32 = 1418;
/// 1468: The operation cannot be performed on database "%.*ls" because it is involved in a
/// database mirroring session.
pub const IN_MIRRORING_SESSION: u32 = 1468;
/// 1801: Database '%.*ls' already exists.
pub const DATABASE_EXISTS: u32 = 1801;
/// 927: Database '%.*ls' cannot be opened. It is in the middle of a restore.
pub const IN_RESTORE: u32 = 927;
/// 3101: Exclusive access could not be obtained because the database is in use.
pub const IN_USE: u32 = 3101;
/// 3153: The database is already fully recovered.
pub const ALREADY_RECOVERED: u32 = 3153;
/// 3201: Cannot open backup device '%ls'. (share host down, or the file not there yet)
pub const CANNOT_OPEN_DEVICE: u32 = 3201;
/// 4326: The log in this backup set terminates at LSN %ls, which is too early to apply to the
/// database.
pub const LOG_TOO_EARLY: u32 = 4326;
/// 5061: ALTER DATABASE failed because a lock could not be placed on database '%.*ls'.
pub const LOCK_NOT_PLACED: u32 = 5061;
/// 6106: Process ID %d is not an active process ID.
pub const NOT_ACTIVE_PROCESS: u32 = 6106;
/// 32009: A log shipping primary entry already exists for database %s.
pub const LS_PRIMARY_EXISTS: u32 = 32009;
/// 32010: Database %s does not exist as log shipping primary.
pub const LS_NOT_PRIMARY: u32 = 32010;
/// 32012: Secondary %s.%s already exists for primary %s.
pub const LS_PRIMARY_SECONDARY_EXISTS: u32 = 32012;
/// 32013: A log shipping entry already exists for secondary database %s.
pub const LS_SECONDARY_DATABASE_EXISTS: u32 = 32013;
/// 32014: Database %s does not exist as log shipping secondary.
pub const LS_NOT_SECONDARY: u32 = 32014;
/// 32023: An entry for primary server %s, primary database %s does not exist on this
/// secondary.
pub const LS_SECONDARY_PRIMARY_ABSENT: u32 = 32023;
/// 32024: An entry for primary server %s, primary database %s already exists.
pub const LS_SECONDARY_PRIMARY_EXISTS: u32 = 32024;
