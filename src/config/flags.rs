//! `-D` settings from JVM flags (`SERVER_JVMFLAGS`, `JVMFLAGS`), as operators of Apache
//! ZooKeeper pass them.

use super::{
    java_trim, keys, parse_log_level, unknown_key_hint, ConfigError, ConfigWarning, Location,
    ServerConfig, Setting, WarningKind, LOG_LEVEL_KEY, MAX_EXTENDED_TYPES_SERVER_ID,
};

impl ServerConfig {
    /// Applies `-D` settings from JVM flags such as `SERVER_JVMFLAGS`/`JVMFLAGS`.
    ///
    /// `-Dzookeeper.<key>=value` sets `<key>` for the settings Apache reads from system
    /// properties (superDigest, skipACL, 4lw.commands.whitelist, extendedTypesEnabled,
    /// enforceQuota, snapCount, ...), and `-Djute.maxbuffer`, `-Dreadonlymode.enabled` and
    /// `-Dzookeeper-rs.logLevel` (or log4j's `-Dzookeeper.root.logger=LEVEL,...`) are read
    /// too. Other JVM options are skipped; an unrecognised `-Dzookeeper.*` is a warning.
    ///
    /// Precedence: a value set in zoo.cfg wins and the flag is ignored with a warning; a
    /// flag fills what zoo.cfg left unset, and a later flag replaces an earlier one. This is
    /// Apache's behaviour for the `zookeeper.*` properties (parsing zoo.cfg writes over the
    /// JVM's values); Apache reads `jute.maxbuffer` and `readonlymode.enabled` only from
    /// flags, and we apply the same rule to them.
    ///
    /// Flags are split on whitespace, as the unquoted `$JVMFLAGS` of Apache's scripts is.
    pub fn apply_jvm_flags(&mut self, flags: &str) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut warnings = Vec::new();
        for token in flags.split_whitespace() {
            let Some(definition) = token.strip_prefix("-D") else {
                continue;
            };
            let (name, raw_value) = definition.split_once('=').unwrap_or((definition, ""));
            let value = java_trim(raw_value);
            let shown = format!("-D{name}");
            let key = match flag_target(name) {
                FlagTarget::Key(key) => key,
                FlagTarget::RootLogger => {
                    let level = value.split(',').next().unwrap_or_default().trim();
                    if self.set_in_file.contains_key(LOG_LEVEL_KEY) {
                        continue;
                    }
                    // log4j appender lists also name levels we do not know; skip those.
                    if let Some(level) = parse_log_level(level) {
                        self.log_level = Some(level);
                    }
                    continue;
                }
                FlagTarget::FileOnly(key) => {
                    warnings.push(ConfigWarning {
                        at: Location::JvmFlags,
                        key: shown,
                        kind: WarningKind::Notice {
                            message: format!(
                                "no effect: {key} is read only from zoo.cfg (Apache ignores this flag too)"
                            ),
                        },
                    });
                    continue;
                }
                FlagTarget::Unknown(rest) => {
                    warnings.push(ConfigWarning {
                        at: Location::JvmFlags,
                        key: shown,
                        kind: WarningKind::UnknownKey {
                            hint: unknown_key_hint(&rest),
                        },
                    });
                    continue;
                }
                FlagTarget::NotOurs => continue,
            };
            if let Some(line) = self.set_in_file.get(&key) {
                warnings.push(ConfigWarning {
                    at: Location::JvmFlags,
                    key: shown,
                    kind: WarningKind::Notice {
                        message: format!(
                            "ignored: {}:{line} sets {key}, and zoo.cfg takes precedence over flags",
                            self.origin
                        ),
                    },
                });
                continue;
            }
            let setting = Setting {
                key: &key,
                shown: &shown,
                value,
                at: &Location::JvmFlags,
            };
            self.apply(&setting, &mut warnings)?;
        }
        // Extended types switched on by a flag tighten the id limit.
        self.check_server_ids()?;
        if let Some(id) = self.my_id {
            if id > self.server_id_limit() {
                return Err(ConfigError::MyId {
                    path: self.data_dir.join("myid"),
                    message: format!(
                        "server id {id} is above {MAX_EXTENDED_TYPES_SERVER_ID}, the limit with extendedTypesEnabled"
                    ),
                });
            }
        }
        Ok(warnings)
    }
}

/// What a `-D` property name means to us.
enum FlagTarget {
    /// A setting, by its zoo.cfg key.
    Key(String),
    /// log4j's root logger, whose first part is a level.
    RootLogger,
    /// A `zookeeper.<key>` that Apache reads only from zoo.cfg.
    FileOnly(String),
    /// A `zookeeper.<rest>` nobody knows.
    Unknown(String),
    /// Some other JVM property.
    NotOurs,
}

fn flag_target(name: &str) -> FlagTarget {
    if name == LOG_LEVEL_KEY {
        return FlagTarget::Key(LOG_LEVEL_KEY.to_owned());
    }
    if name == "zookeeper.root.logger" {
        return FlagTarget::RootLogger;
    }
    if keys::UNPREFIXED_SYSTEM_PROPERTY_KEYS.contains(&name) {
        return FlagTarget::Key(name.to_owned());
    }
    let Some(rest) = name.strip_prefix("zookeeper.") else {
        return FlagTarget::NotOurs;
    };
    if keys::SYSTEM_PROPERTY_KEYS.contains(&rest) || keys::is_key_without_effect(rest) {
        return FlagTarget::Key(rest.to_owned());
    }
    if keys::FILE_ONLY_KEYS.contains(&rest) || rest.starts_with("server.") {
        return FlagTarget::FileOnly(rest.to_owned());
    }
    if keys::LAUNCHER_PROPERTIES.contains(&name) {
        return FlagTarget::NotOurs;
    }
    FlagTarget::Unknown(rest.to_owned())
}
