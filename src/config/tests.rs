use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tracing::level_filters::LevelFilter;

use super::*;

fn load(text: &str) -> Loaded {
    ServerConfig::from_str(text, "zoo.cfg").unwrap_or_else(|e| panic!("{text:?} failed: {e}"))
}

fn config(text: &str) -> ServerConfig {
    let loaded = load(text);
    assert!(
        loaded.warnings.is_empty(),
        "unexpected warnings for {text:?}: {:?}",
        loaded.warnings
    );
    loaded.config
}

fn error(text: &str) -> String {
    match ServerConfig::from_str(text, "zoo.cfg") {
        Ok(loaded) => panic!("{text:?} loaded: {:?}", loaded.config),
        Err(e) => e.to_string(),
    }
}

fn with_data_dir(extra: &str) -> String {
    format!("dataDir=/var/lib/zookeeper\n{extra}\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

// ---- syntax, as seen through the configuration ----

#[test]
fn properties_syntax_variants_all_set_values() {
    let c = config(
        "# comment\n\
         ! another comment\n\
         \n\
         \x20  dataDir = /data/zk\n\
         tickTime:2500\n\
         clientPort 2182\n\
         4lw.commands.whitelist=ruok, \\\n    stat,\\\n    mntr\n\
         maxClientCnxns=\\u0031\\u0030\n",
    );
    assert_eq!(c.data_dir, PathBuf::from("/data/zk"));
    assert_eq!(c.tick_time_ms, 2500);
    assert_eq!(c.client_port, Some(2182));
    assert_eq!(c.max_client_cnxns, 10);
    let expected: BTreeSet<String> = ["ruok", "stat", "mntr"].map(String::from).into();
    assert_eq!(
        c.four_letter_word_whitelist,
        FourLetterWords::Only(expected)
    );
}

#[test]
fn values_are_trimmed_like_java() {
    let c = config("dataDir=/data/zk  \t\ntickTime=2000   \n");
    assert_eq!(c.data_dir, PathBuf::from("/data/zk"));
    assert_eq!(c.tick_time_ms, 2000);
}

#[test]
fn malformed_escape_names_file_and_line() {
    let e = error("dataDir=/d\ntickTime=\\uzzzz\n");
    assert!(e.starts_with("zoo.cfg:2: "), "{e}");
}

#[test]
fn repeated_key_last_wins_with_warning() {
    let loaded = load("dataDir=/d\ntickTime=2000\ntickTime=4000\n");
    assert_eq!(loaded.config.tick_time_ms, 4000);
    assert_eq!(
        loaded.warnings,
        vec![ConfigWarning {
            at: Location::Line {
                origin: "zoo.cfg".into(),
                line: 3
            },
            key: "tickTime".into(),
            kind: WarningKind::RepeatedKey { replaced_line: 2 },
        }]
    );
    assert_eq!(
        loaded.warnings[0].to_string(),
        "zoo.cfg:3: tickTime is given again; this value replaces the one on line 2"
    );
}

// ---- defaults ----

#[test]
fn defaults_match_apache() {
    let c = config("dataDir=/var/lib/zookeeper");
    assert_eq!(c.tick_time_ms, 3000);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zookeeper"));
    assert_eq!(c.data_log_dir, None);
    assert_eq!(c.transaction_log_dir(), Path::new("/var/lib/zookeeper"));
    assert!(c.data_dir_autocreate);
    assert_eq!(c.client_port, None);
    assert_eq!(c.client_port_address, None);
    assert_eq!(c.secure_client_port, None);
    assert_eq!(c.observer_master_port, None);
    assert_eq!(c.client_port_listen_backlog, None);
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(c.max_cnxns, 0);
    assert_eq!(c.min_session_timeout_ms, 6000);
    assert_eq!(c.max_session_timeout_ms, 60000);
    assert_eq!(c.four_letter_word_whitelist, FourLetterWords::default());
    assert!(!c.skip_acl);
    assert!(!c.enforce_quota);
    assert!(!c.extended_types_enabled);
    assert_eq!(c.global_outstanding_limit, 1000);
    assert_eq!(c.super_digest, None);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.autopurge_purge_interval_hours, 0);
    assert_eq!(c.pre_alloc_size_kb, 65536);
    assert!(c.force_sync);
    assert_eq!(c.jute_max_buffer, 0xfffff);
    assert_eq!(c.init_limit, None);
    assert_eq!(c.sync_limit, None);
    assert_eq!(c.connect_to_learner_master_limit, None);
    assert_eq!(c.peer_type, PeerType::Participant);
    assert!(c.leader_serves);
    assert!(c.standalone_enabled);
    assert!(!c.reconfig_enabled);
    assert!(!c.readonly_mode_enabled);
    assert!(!c.quorum_listen_on_all_ips);
    assert_eq!(c.election_alg, 3);
    assert!(c.sync_enabled);
    assert!(!c.local_sessions_enabled);
    assert!(!c.local_sessions_upgrading_enabled);
    assert!(!c.multi_address_enabled);
    assert_eq!(c.dynamic_config_file, None);
    assert!(c.servers.is_empty());
    assert_eq!(c.my_id, None);
    assert_eq!(c.admin, AdminServerConfig::default());
    assert!(c.admin.enable_server);
    assert_eq!(c.admin.server_address, "0.0.0.0");
    assert_eq!(c.admin.server_port, 8080);
    assert_eq!(c.admin.command_url, "/commands");
    assert_eq!(c.log_level, None);
    assert!(c.other.is_empty());
    assert!(!c.is_distributed());
    assert_eq!(c.client_address(), None);
}

#[test]
fn new_has_the_same_defaults_as_an_empty_file() {
    let from_file = config("dataDir=/var/lib/zookeeper");
    let mut built = ServerConfig::new(PathBuf::from("/var/lib/zookeeper"));
    built.origin = "zoo.cfg".into();
    built.set_in_file = from_file.set_in_file.clone();
    assert_eq!(built, from_file);
}

#[test]
fn session_timeouts_default_to_multiples_of_tick_time() {
    let c = config(&with_data_dir("tickTime=2000"));
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (4000, 40000)
    );
    let c = config(&with_data_dir("tickTime=2000\nminSessionTimeout=1000"));
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (1000, 40000)
    );
    let c = config(&with_data_dir(
        "maxSessionTimeout=90000\nminSessionTimeout=-1",
    ));
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (6000, 90000)
    );
}

#[test]
fn typed_values_are_read() {
    let c = config(&with_data_dir(
        "tickTime=2000\n\
         dataLogDir=/var/log/zk\n\
         clientPort=2181\n\
         clientPortAddress=127.0.0.1\n\
         secureClientPort=2281\n\
         observerMasterPort=2191\n\
         clientPortListenBacklog=128\n\
         maxClientCnxns=0\n\
         maxCnxns=500\n\
         minSessionTimeout=4000\n\
         maxSessionTimeout=30000\n\
         skipACL=yes\n\
         enforceQuota=true\n\
         extendedTypesEnabled=TRUE\n\
         globalOutstandingLimit=2000\n\
         DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
         snapCount=5000\n\
         autopurge.snapRetainCount=5\n\
         autopurge.purgeInterval=24\n\
         preAllocSize=1024\n\
         forceSync=no\n\
         jute.maxbuffer=4194304\n\
         initLimit=10\n\
         syncLimit=5\n\
         connectToLearnerMasterLimit=7\n\
         peerType=participant\n\
         leaderServes=no\n\
         standaloneEnabled=true\n\
         reconfigEnabled=true\n\
         readonlymode.enabled=true\n\
         quorumListenOnAllIPs=true\n\
         electionAlg=3\n\
         syncEnabled=false\n\
         localSessionsEnabled=true\n\
         localSessionsUpgradingEnabled=true\n\
         datadir.autocreate=false\n\
         admin.enableServer=false\n\
         admin.serverAddress=127.0.0.1\n\
         admin.serverPort=9090\n\
         admin.commandURL=/cmds\n\
         zookeeper-rs.logLevel=DEBUG",
    ));
    assert_eq!(c.tick_time_ms, 2000);
    assert_eq!(c.data_log_dir, Some(PathBuf::from("/var/log/zk")));
    assert_eq!(c.transaction_log_dir(), Path::new("/var/log/zk"));
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.client_port_address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(c.secure_client_port, Some(2281));
    assert_eq!(c.observer_master_port, Some(2191));
    assert_eq!(c.client_port_listen_backlog, Some(128));
    assert_eq!(c.max_client_cnxns, 0);
    assert_eq!(c.max_cnxns, 500);
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (4000, 30000)
    );
    assert!(c.skip_acl);
    assert!(c.enforce_quota);
    assert!(c.extended_types_enabled);
    assert_eq!(c.global_outstanding_limit, 2000);
    assert_eq!(
        c.super_digest.as_deref(),
        Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    );
    assert_eq!(c.snap_count, 5000);
    assert_eq!(c.autopurge_snap_retain_count, 5);
    assert_eq!(c.autopurge_purge_interval_hours, 24);
    assert_eq!(c.pre_alloc_size_kb, 1024);
    assert!(!c.force_sync);
    assert_eq!(c.jute_max_buffer, 4_194_304);
    assert_eq!(c.init_limit, Some(10));
    assert_eq!(c.sync_limit, Some(5));
    assert_eq!(c.connect_to_learner_master_limit, Some(7));
    assert!(!c.leader_serves);
    assert!(c.reconfig_enabled);
    assert!(c.readonly_mode_enabled);
    assert!(c.quorum_listen_on_all_ips);
    assert!(!c.sync_enabled);
    assert!(c.local_sessions_enabled);
    assert!(c.local_sessions_upgrading_enabled);
    assert!(!c.data_dir_autocreate);
    assert_eq!(
        c.admin,
        AdminServerConfig {
            enable_server: false,
            server_address: "127.0.0.1".into(),
            server_port: 9090,
            command_url: "/cmds".into(),
        }
    );
    assert_eq!(c.log_level, Some(LevelFilter::DEBUG));
    assert_eq!(
        c.client_address(),
        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181))
    );
}

#[test]
fn system_property_numbers_accept_java_decode_forms() {
    let c = config(&with_data_dir(
        "jute.maxbuffer=0x400000\nsnapCount=#10\nmaxCnxns=010",
    ));
    assert_eq!(c.jute_max_buffer, 0x40_0000);
    assert_eq!(c.snap_count, 16);
    assert_eq!(c.max_cnxns, 8);
    // zoo.cfg's own keys are plain decimal, as Integer.parseInt reads them.
    assert!(error(&with_data_dir("tickTime=0x10")).contains("tickTime"));
}

#[test]
fn apache_keys_without_effect_are_kept_quietly() {
    let c = config(&with_data_dir(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpPort=7000\n\
         snapSizeLimitInKb=1024\n\
         sslQuorum=false\n\
         ssl.keyStore.location=/etc/zk/keystore.jks\n\
         group.1=1:2:3\n\
         jvm.pause.monitor=true",
    ));
    assert_eq!(
        c.other.get("metricsProvider.httpPort").map(String::as_str),
        Some("7000")
    );
    assert_eq!(
        c.other.get("snapSizeLimitInKb").map(String::as_str),
        Some("1024")
    );
    assert_eq!(c.other.len(), 7);
}

#[test]
fn log_level_accepts_log4j_names() {
    for (text, level) in [
        ("fatal", LevelFilter::ERROR),
        ("WARN", LevelFilter::WARN),
        ("info", LevelFilter::INFO),
        ("trace", LevelFilter::TRACE),
        ("off", LevelFilter::OFF),
    ] {
        let c = config(&with_data_dir(&format!("zookeeper-rs.logLevel={text}")));
        assert_eq!(c.log_level, Some(level), "{text}");
    }
}

// ---- adjustments Apache makes, with a warning ----

#[test]
fn snap_retain_count_is_raised_to_three() {
    let loaded = load(&with_data_dir("autopurge.snapRetainCount=1"));
    assert_eq!(loaded.config.autopurge_snap_retain_count, 3);
    assert_eq!(loaded.warnings.len(), 1);
    let w = loaded.warnings[0].to_string();
    assert!(
        w.starts_with("zoo.cfg:2: autopurge.snapRetainCount:"),
        "{w}"
    );
}

#[test]
fn commit_log_count_is_read_from_zoo_cfg_and_from_flags() {
    assert_eq!(
        load(&with_data_dir("")).config.commit_log_count,
        super::DEFAULT_COMMIT_LOG_COUNT
    );
    let loaded = load(&with_data_dir("commitLogCount=20"));
    assert_eq!(loaded.config.commit_log_count, 20);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!loaded.config.other.contains_key("commitLogCount"));
    let mut c = load(&with_data_dir("")).config;
    let warnings = c.apply_jvm_flags("-Dzookeeper.commitLogCount=7").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.commit_log_count, 7);
    assert!(ServerConfig::from_str(&with_data_dir("commitLogCount=-1"), "zoo.cfg").is_err());
}

#[test]
fn snap_count_is_raised_to_two() {
    let loaded = load(&with_data_dir("snapCount=1"));
    assert_eq!(loaded.config.snap_count, 2);
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn negative_purge_interval_disables_purging() {
    let loaded = load(&with_data_dir("autopurge.purgeInterval=-5"));
    assert_eq!(loaded.config.autopurge_purge_interval_hours, 0);
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn relative_data_dir_warns_unless_dot_slash() {
    let loaded = load("dataDir=data\n");
    assert_eq!(loaded.config.data_dir, PathBuf::from("data"));
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].to_string().contains("./data"));
    let c = config("dataDir=./data\n");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
}

// ---- unknown keys ----

#[test]
fn unknown_key_is_a_warning_naming_key_and_line() {
    let loaded = load("dataDir=/d\n\nfrobnicate=7\n");
    assert_eq!(
        loaded.warnings,
        vec![ConfigWarning {
            at: Location::Line {
                origin: "zoo.cfg".into(),
                line: 3
            },
            key: "frobnicate".into(),
            kind: WarningKind::UnknownKey { hint: None },
        }]
    );
    assert_eq!(
        loaded.warnings[0].to_string(),
        "zoo.cfg:3: unknown key \"frobnicate\", ignored"
    );
}

#[test]
fn unknown_key_hints_at_intended_spelling() {
    let loaded = load("dataDir=/d\nticktime=2000\nzookeeper.skipACL=yes\n");
    assert_eq!(loaded.config.tick_time_ms, 3000);
    assert!(!loaded.config.skip_acl);
    let text: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(text[0].contains("did you mean tickTime"), "{text:?}");
    assert!(
        text[1].contains("without the \"zookeeper.\" prefix: skipACL"),
        "{text:?}"
    );
}

// ---- bad values ----

#[test]
fn bad_value_message_names_file_line_key_and_expectation() {
    let text = "# header\n#\n#\n#\n#\ndataDir=/d\ntickTime=abc\n";
    assert_eq!(
        error(text),
        "zoo.cfg:7: tickTime: expected a positive integer (milliseconds), found \"abc\""
    );
}

#[test]
fn every_bad_value_names_its_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("tickTime=0", "tickTime", "positive integer"),
        ("tickTime=-5", "tickTime", "positive integer"),
        ("tickTime=99999999999", "tickTime", "positive integer"),
        ("clientPort=65536", "clientPort", "port number"),
        ("clientPort=http", "clientPort", "port number"),
        ("secureClientPort=-1", "secureClientPort", "port number"),
        (
            "clientPortAddress=not a host!",
            "clientPortAddress",
            "IP address",
        ),
        (
            "maxClientCnxns=many",
            "maxClientCnxns",
            "non-negative integer",
        ),
        (
            "minSessionTimeout=-2",
            "minSessionTimeout",
            "non-negative integer",
        ),
        (
            "maxSessionTimeout=1.5",
            "maxSessionTimeout",
            "non-negative integer",
        ),
        ("skipACL=true", "skipACL", "yes or no"),
        ("forceSync=No", "forceSync", "yes or no"),
        ("leaderServes=1", "leaderServes", "yes or no"),
        ("enforceQuota=yes", "enforceQuota", "true or false"),
        (
            "extendedTypesEnabled=on",
            "extendedTypesEnabled",
            "true or false",
        ),
        (
            "standaloneEnabled=nope",
            "standaloneEnabled",
            "true or false",
        ),
        ("reconfigEnabled=", "reconfigEnabled", "true or false"),
        ("electionAlg=1", "electionAlg", "3 (the only"),
        ("peerType=leader", "peerType", "participant or observer"),
        ("snapCount=lots", "snapCount", "non-negative integer"),
        ("preAllocSize=-1", "preAllocSize", "non-negative integer"),
        ("jute.maxbuffer=0", "jute.maxbuffer", "positive integer"),
        (
            "globalOutstandingLimit=-1",
            "globalOutstandingLimit",
            "non-negative",
        ),
        (
            "autopurge.purgeInterval=daily",
            "autopurge.purgeInterval",
            "integer",
        ),
        ("initLimit=ten", "initLimit", "ticks"),
        ("syncLimit=-1", "syncLimit", "ticks"),
        ("admin.serverPort=80800", "admin.serverPort", "port number"),
        (
            "admin.commandURL=commands",
            "admin.commandURL",
            "starting with /",
        ),
        (
            "DigestAuthenticationProvider.superDigest=nocolon",
            "DigestAuthenticationProvider.superDigest",
            "user:base64",
        ),
        (
            "zookeeper-rs.logLevel=loud",
            "zookeeper-rs.logLevel",
            "debug",
        ),
        ("dataLogDir=", "dataLogDir", "directory path"),
    ];
    for (line, key, expected) in cases {
        let text = format!("dataDir=/d\n# filler\n{line}\n");
        let e = error(&text);
        let prefix = format!("zoo.cfg:3: {key}: ");
        assert!(e.starts_with(&prefix), "{line}: {e}");
        assert!(e.contains(expected), "{line}: {e}");
    }
}

#[test]
fn missing_data_dir_is_an_error() {
    let e = error("tickTime=2000\nclientPort=2181\n");
    assert!(e.starts_with("zoo.cfg: dataDir: not set"), "{e}");
    assert!(error("dataDir=\n").starts_with("zoo.cfg:1: dataDir: expected a directory path"));
}

#[test]
fn min_session_timeout_above_max_is_an_error() {
    let e = error(&with_data_dir(
        "minSessionTimeout=50000\nmaxSessionTimeout=40000",
    ));
    assert!(e.starts_with("zoo.cfg:3: maxSessionTimeout: "), "{e}");
    assert!(
        e.contains(
            "minSessionTimeout (50000 ms) must not be larger than maxSessionTimeout (40000 ms)"
        ),
        "{e}"
    );
    // Against the default maximum (20 x 3000 ms), the minimum's own line is named.
    let e = error(&with_data_dir("minSessionTimeout=70000"));
    assert!(e.starts_with("zoo.cfg:2: minSessionTimeout: "), "{e}");
    assert!(e.contains("60000 ms, the default of 20 x tickTime"), "{e}");
}

#[test]
fn client_port_address_needs_client_port() {
    let e = error(&with_data_dir("clientPortAddress=127.0.0.1"));
    assert!(
        e.starts_with("zoo.cfg:2: clientPortAddress: set, but clientPort is not"),
        "{e}"
    );
}

// ---- four-letter words ----

#[test]
fn four_letter_words_default_only_srvr() {
    let c = config("dataDir=/d");
    assert!(c.is_four_letter_word_enabled("srvr"));
    for word in ["ruok", "stat", "mntr", "conf", "isro"] {
        assert!(!c.is_four_letter_word_enabled(word), "{word}");
    }
}

#[test]
fn four_letter_words_list_with_commas_and_spaces() {
    let c = config(&with_data_dir(
        "4lw.commands.whitelist=stat, ruok  conf,,isro",
    ));
    for word in ["stat", "ruok", "conf", "isro", "srvr"] {
        assert!(c.is_four_letter_word_enabled(word), "{word}");
    }
    assert!(!c.is_four_letter_word_enabled("mntr"));
    assert!(!c.is_four_letter_word_enabled("dump"));
}

#[test]
fn four_letter_words_star_enables_all_known() {
    let c = config(&with_data_dir("4lw.commands.whitelist=*"));
    assert_eq!(c.four_letter_word_whitelist, FourLetterWords::All);
    for word in FOUR_LETTER_WORDS {
        assert!(c.is_four_letter_word_enabled(word), "{word}");
    }
    assert!(!c.is_four_letter_word_enabled("nope"));
}

#[test]
fn srvr_always_runs_and_isro_with_read_only_mode() {
    let c = config(&with_data_dir(
        "4lw.commands.whitelist=ruok\nreadonlymode.enabled=true",
    ));
    assert!(c.is_four_letter_word_enabled("srvr"));
    assert!(c.is_four_letter_word_enabled("isro"));
    assert!(!c.is_four_letter_word_enabled("stat"));
}

#[test]
fn unknown_four_letter_word_is_a_warning() {
    let loaded = load(&with_data_dir("4lw.commands.whitelist=ruok, rouk"));
    assert!(loaded.config.is_four_letter_word_enabled("ruok"));
    assert_eq!(loaded.warnings.len(), 1);
    let w = loaded.warnings[0].to_string();
    assert!(
        w.starts_with("zoo.cfg:2: 4lw.commands.whitelist: \"rouk\""),
        "{w}"
    );
}

// ---- server lines ----

fn servers(lines: &str) -> Vec<ServerSpec> {
    config(&with_data_dir(lines)).servers
}

fn address(host: &str, quorum_port: u16, election_port: u16) -> QuorumAddress {
    QuorumAddress {
        host: host.into(),
        quorum_port,
        election_port,
    }
}

#[test]
fn server_lines_participant_observer_and_client_parts() {
    let specs = servers(
        "server.3=zk3.example:2888:3888:observer;2181\n\
         server.1=zk1.example:2888:3888\n\
         server.2=zk2.example:2888:3888:Participant;10.0.0.2:2181\n\
         initLimit=5\nsyncLimit=2",
    );
    let ids: Vec<u64> = specs.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1, 2, 3], "sorted by id");
    assert_eq!(specs[0].addresses, vec![address("zk1.example", 2888, 3888)]);
    assert_eq!(specs[0].peer_type, PeerType::Participant);
    assert_eq!(specs[0].client, None);
    assert_eq!(
        specs[0].location,
        Location::Line {
            origin: "zoo.cfg".into(),
            line: 3
        }
    );
    assert_eq!(specs[1].peer_type, PeerType::Participant);
    assert_eq!(
        specs[1].client,
        Some(ClientEndpoint {
            host: Some("10.0.0.2".into()),
            port: 2181
        })
    );
    assert_eq!(specs[2].peer_type, PeerType::Observer);
    assert_eq!(
        specs[2].client,
        Some(ClientEndpoint {
            host: None,
            port: 2181
        })
    );
}

#[test]
fn server_lines_with_ipv6_in_brackets() {
    let specs = servers(
        "server.1=[2001:db8::1]:2888:3888;[::1]:2181\n\
         server.2=[2001:db8::2]:2888:3888:participant\n\
         initLimit=5\nsyncLimit=2",
    );
    assert_eq!(specs[0].addresses, vec![address("2001:db8::1", 2888, 3888)]);
    assert_eq!(
        specs[0].client,
        Some(ClientEndpoint {
            host: Some("::1".into()),
            port: 2181
        })
    );
    assert_eq!(specs[1].addresses, vec![address("2001:db8::2", 2888, 3888)]);
}

#[test]
fn single_server_line_is_standalone() {
    let c = config(&with_data_dir("server.1=localhost:2888:3888;2181"));
    assert_eq!(c.servers.len(), 1);
    assert!(!c.is_distributed());
}

#[test]
fn multiple_addresses_need_multi_address_enabled() {
    let line = "server.1=a1:2888:3888|a2:2889:3889";
    let e = error(&with_data_dir(line));
    assert!(e.starts_with("zoo.cfg:2: server.1: "), "{e}");
    assert!(e.contains("multiAddress.enabled=true"), "{e}");
    let specs = servers(&format!("{line}\nmultiAddress.enabled=true"));
    assert_eq!(
        specs[0].addresses,
        vec![address("a1", 2888, 3888), address("a2", 2889, 3889)]
    );
}

#[test]
fn bad_server_lines_name_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "server.1=zk1:2888",
            "server.1: expected host:quorumPort:electionPort",
        ),
        (
            "server.1=zk1:2888:3888:observer:extra",
            "server.1: expected host:quorumPort",
        ),
        ("server.1=zk1:x:3888", "server.1: expected host:quorumPort"),
        (
            "server.1=zk1:2888:70000",
            "server.1: expected host:quorumPort",
        ),
        ("server.1=zk1:0:3888", "server.1: expected host:quorumPort"),
        ("server.1=:2888:3888", "server.1: expected host:quorumPort"),
        (
            "server.1=2001:db8::1:2888:3888",
            "server.1: expected host:quorumPort",
        ),
        (
            "server.1=[2001:db8::1:2888:3888",
            "server.1: expected host:quorumPort",
        ),
        (
            "server.1=zk1:2888:3888;a:b:2181",
            "server.1: expected host:quorumPort",
        ),
        (
            "server.1=zk1:2888:3888;2181;2182",
            "server.1: expected host:quorumPort",
        ),
        (
            "server.1=zk1:2888:3888;",
            "server.1: expected host:quorumPort",
        ),
        (
            "server.1=zk1:2888:3888:voter",
            "server.1: expected a role of participant or observer",
        ),
        (
            "server.1=zk1:2888:2888",
            "server.1: the quorum port and the election port must differ",
        ),
        (
            "server.256=zk1:2888:3888",
            "server.256: expected a server id from 0 to 255",
        ),
        (
            "server.x=zk1:2888:3888",
            "server.x: expected a server id from 0 to 255",
        ),
        ("server.-1=zk1:2888:3888", "server.-1: expected a server id"),
    ];
    for (line, expected) in cases {
        let e = error(&with_data_dir(line));
        assert!(e.starts_with("zoo.cfg:2: "), "{line}: {e}");
        assert!(e.contains(expected), "{line}: {e}");
    }
}

#[test]
fn server_id_255_needs_extended_types_off() {
    assert_eq!(servers("server.255=zk:2888:3888")[0].id, 255);
    let e = error(&with_data_dir(
        "server.255=zk:2888:3888\nextendedTypesEnabled=true",
    ));
    assert!(
        e.starts_with("zoo.cfg:2: server.255: with extendedTypesEnabled"),
        "{e}"
    );
}

#[test]
fn quorum_shape_is_checked() {
    let e = error(&with_data_dir("server.1=zk1:2888:3888:observer"));
    assert!(e.contains("observers without any participant"), "{e}");
    let e = error(&with_data_dir(
        "server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer",
    ));
    assert!(e.contains("standaloneEnabled=false"), "{e}");
    let e = error(&with_data_dir("standaloneEnabled=false"));
    assert!(e.starts_with("zoo.cfg:2: standaloneEnabled: "), "{e}");
    let c = config(&with_data_dir(
        "standaloneEnabled=false\nserver.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer",
    ));
    assert!(c.is_distributed());
}

#[test]
fn server_lines_and_dynamic_config_file_exclude_each_other() {
    let e = error(&with_data_dir(
        "dynamicConfigFile=/etc/zk/zoo.cfg.dynamic\nserver.1=zk1:2888:3888",
    ));
    assert!(e.starts_with("zoo.cfg:3: server: "), "{e}");
    assert!(e.contains("zoo.cfg:2"), "{e}");
}

// ---- JVM flags ----

#[test]
fn jvm_flags_fill_unset_settings() {
    let mut c = config("dataDir=/d");
    let warnings = c
        .apply_jvm_flags(
            "-Xmx512m -Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc= \
             -Dzookeeper.skipACL=yes -Dzookeeper.4lw.commands.whitelist=* \
             -Dzookeeper.extendedTypesEnabled=true -Dreadonlymode.enabled=true \
             -Dzookeeper.enforceQuota=true -Djute.maxbuffer=0x200000 \
             -Dzookeeper.snapCount=200 -Dzookeeper.forceSync=no \
             -Dzookeeper.admin.serverPort=9999 -Dzookeeper.snapSizeLimitInKb=99 \
             -Dzookeeper.log.dir=/var/log/zookeeper -Djava.net.preferIPv4Stack=true \
             -XX:+UseG1GC",
        )
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
    assert!(c.skip_acl);
    assert_eq!(c.four_letter_word_whitelist, FourLetterWords::All);
    assert!(c.extended_types_enabled);
    assert!(c.readonly_mode_enabled);
    assert!(c.enforce_quota);
    assert_eq!(c.jute_max_buffer, 0x20_0000);
    assert_eq!(c.snap_count, 200);
    assert!(!c.force_sync);
    assert_eq!(c.admin.server_port, 9999);
    assert_eq!(
        c.other.get("snapSizeLimitInKb").map(String::as_str),
        Some("99")
    );
}

#[test]
fn zoo_cfg_wins_over_jvm_flags() {
    let mut c = config("dataDir=/d\nskipACL=no\n4lw.commands.whitelist=ruok\n");
    let warnings = c
        .apply_jvm_flags("-Dzookeeper.skipACL=yes -Dzookeeper.4lw.commands.whitelist=*")
        .unwrap();
    assert!(!c.skip_acl);
    assert!(!c.is_four_letter_word_enabled("stat"));
    assert_eq!(warnings.len(), 2);
    assert_eq!(
        warnings[0].to_string(),
        "JVM flags: -Dzookeeper.skipACL: ignored: zoo.cfg:2 sets skipACL, and zoo.cfg takes \
         precedence over flags"
    );
}

#[test]
fn later_jvm_flag_replaces_earlier() {
    let mut c = config("dataDir=/d");
    c.apply_jvm_flags("-Djute.maxbuffer=1000 -Djute.maxbuffer=2000")
        .unwrap();
    assert_eq!(c.jute_max_buffer, 2000);
}

#[test]
fn bad_jvm_flag_value_names_the_flag() {
    let mut c = config("dataDir=/d");
    let e = c
        .apply_jvm_flags("-Dzookeeper.skipACL=true")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "JVM flags: -Dzookeeper.skipACL: expected yes or no, found \"true\""
    );
}

#[test]
fn jvm_flags_that_do_nothing_are_reported() {
    let mut c = config("dataDir=/d");
    let warnings = c
        .apply_jvm_flags("-Dzookeeper.tickTime=1000 -Dzookeeper.skipAcl=yes")
        .unwrap();
    assert_eq!(c.tick_time_ms, 3000);
    assert!(!c.skip_acl);
    let text: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].contains("tickTime is read only from zoo.cfg"),
        "{text:?}"
    );
    assert!(
        text[1].contains("unknown key \"-Dzookeeper.skipAcl\""),
        "{text:?}"
    );
    assert!(text[1].contains("did you mean skipACL"), "{text:?}");
}

#[test]
fn log_level_from_flags() {
    let mut c = config("dataDir=/d");
    c.apply_jvm_flags("-Dzookeeper.root.logger=WARN,CONSOLE")
        .unwrap();
    assert_eq!(c.log_level, Some(LevelFilter::WARN));
    c.apply_jvm_flags("-Dzookeeper-rs.logLevel=trace").unwrap();
    assert_eq!(c.log_level, Some(LevelFilter::TRACE));
    let mut c = config("dataDir=/d\nzookeeper-rs.logLevel=error");
    c.apply_jvm_flags("-Dzookeeper.root.logger=DEBUG,ROLLINGFILE")
        .unwrap();
    assert_eq!(c.log_level, Some(LevelFilter::ERROR));
}

#[test]
fn extended_types_flag_checks_server_ids() {
    let mut c = config(&with_data_dir("server.255=zk:2888:3888"));
    let e = c
        .apply_jvm_flags("-Dzookeeper.extendedTypesEnabled=true")
        .unwrap_err();
    assert!(e.to_string().contains("server.255"), "{e}");
}

// ---- myid ----

#[test]
fn myid_reads_first_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(myid(dir.path()).unwrap(), None);
    write(dir.path(), "myid", "3\n");
    assert_eq!(myid(dir.path()).unwrap(), Some(3));
    write(dir.path(), "myid", " 7 \r\nignored\n");
    assert_eq!(myid(dir.path()).unwrap(), Some(7));
    write(dir.path(), "myid", "255");
    assert_eq!(myid(dir.path()).unwrap(), Some(255));
}

#[test]
fn myid_garbage_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("myid");
    for (content, expected) in [
        ("", "the first line is empty"),
        ("\n5\n", "the first line is empty"),
        ("one\n", "found \"one\""),
        ("-1\n", "found \"-1\""),
        ("256\n", "server id 256 is above 255"),
    ] {
        fs::write(&path, content).unwrap();
        let e = myid(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: ", path.display())),
            "{content:?}: {e}"
        );
        assert!(e.contains(expected), "{content:?}: {e}");
    }
}

// ---- whole files ----

#[test]
fn from_file_reads_myid_and_takes_client_address_from_own_server_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    write(&data, "myid", "2\n");
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\ninitLimit=10\nsyncLimit=5\n\
             server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n\
             server.2=127.0.0.1:2889:3889;127.0.0.1:2182\n\
             server.3=127.0.0.1:2890:3890;127.0.0.1:2183\n",
            data.display()
        ),
    );
    let loaded = ServerConfig::from_file(&cfg).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.my_id, Some(2));
    assert!(c.is_distributed());
    assert_eq!(
        c.client_address(),
        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2182))
    );
}

#[test]
fn client_port_and_own_server_line_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "myid", "1");
    let text = |client_port: &str| {
        format!(
            "dataDir={}\n{client_port}\nserver.1=localhost:2888:3888;2181\n",
            dir.path().display()
        )
    };
    let cfg = write(dir.path(), "zoo.cfg", &text("clientPort=2181"));
    let c = ServerConfig::from_file(&cfg).unwrap().config;
    assert_eq!(
        c.client_address(),
        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2181))
    );
    let cfg = write(dir.path(), "zoo.cfg", &text("clientPort=2999"));
    let e = ServerConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":3: server.1: this server's client address"),
        "{e}"
    );
}

#[test]
fn ipv6_client_host_on_own_server_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "myid", "1");
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\nserver.1=[::1]:2888:3888;[::1]:2181\n",
            dir.path().display()
        ),
    );
    let c = ServerConfig::from_file(&cfg).unwrap().config;
    assert_eq!(
        c.client_address(),
        Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 2181))
    );
}

#[test]
fn quorum_needs_limits_and_myid() {
    let dir = tempfile::tempdir().unwrap();
    let servers = "server.1=zk1:2888:3888\nserver.2=zk2:2888:3888\nserver.3=zk3:2888:3888\n";
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!("dataDir={}\nsyncLimit=5\n{servers}", dir.path().display()),
    );
    let e = ServerConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains(": initLimit: a server in a quorum needs"), "{e}");

    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\ninitLimit=10\nsyncLimit=5\n{servers}",
            dir.path().display()
        ),
    );
    let e = ServerConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("myid: missing"), "{e}");

    write(dir.path(), "myid", "3");
    let c = ServerConfig::from_file(&cfg).unwrap().config;
    assert_eq!(c.my_id, Some(3));
}

#[test]
fn peer_type_follows_the_server_list() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "myid", "2");
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\ninitLimit=10\nsyncLimit=5\npeerType=participant\n\
             server.1=zk1:2888:3888\nserver.2=zk2:2888:3888:observer\nserver.3=zk3:2888:3888\n",
            dir.path().display()
        ),
    );
    let loaded = ServerConfig::from_file(&cfg).unwrap();
    assert_eq!(loaded.config.peer_type, PeerType::Observer);
    assert_eq!(loaded.warnings.len(), 1);
    let w = loaded.warnings[0].to_string();
    assert!(
        w.contains(
            ":4: peerType: peerType says participant, but the server list has server 2 as observer"
        ),
        "{w}"
    );
}

#[test]
fn dynamic_config_file_supplies_servers() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "myid", "1");
    let dynamic = write(
        dir.path(),
        "zoo.cfg.dynamic.100000000",
        "server.1=zk1:2888:3888:participant;2181\nserver.2=zk2:2888:3888:participant;2181\n\
         server.3=zk3:2888:3888:participant;2181\n",
    );
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\ninitLimit=10\nsyncLimit=5\ndynamicConfigFile={}\n",
            dir.path().display(),
            dynamic.display()
        ),
    );
    let c = ServerConfig::from_file(&cfg).unwrap().config;
    assert_eq!(c.servers.len(), 3);
    assert_eq!(c.client_port, Some(2181));

    write(
        dir.path(),
        "zoo.cfg.dynamic.100000000",
        "server.1=zk1:2888:3888\ntickTime=1\n",
    );
    let e = ServerConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("zoo.cfg.dynamic.100000000:2: tickTime: "), "{e}");
}

#[test]
fn standalone_disabled_quorum_from_dynamic_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "myid", "1");
    let dynamic = write(
        dir.path(),
        "zoo.cfg.dynamic",
        "server.1=zk1:2888:3888;2181\n",
    );
    let cfg = write(
        dir.path(),
        "zoo.cfg",
        &format!(
            "dataDir={}\ninitLimit=10\nsyncLimit=5\nstandaloneEnabled=false\ndynamicConfigFile={}\n",
            dir.path().display(),
            dynamic.display()
        ),
    );
    let c = ServerConfig::from_file(&cfg).unwrap().config;
    assert!(c.is_distributed());
    assert_eq!(c.servers.len(), 1);

    write(dir.path(), "zoo.cfg.dynamic", "");
    let e = ServerConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(
        e.contains(":4: standaloneEnabled: false needs at least one participant"),
        "{e}"
    );
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let e = ServerConfig::from_file(Path::new("/nonexistent/zoo.cfg"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/zoo.cfg: cannot read"), "{e}");
}

#[test]
fn latin1_file_is_read_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    fs::write(&path, b"dataDir=/data/caf\xe9\n").unwrap();
    let c = ServerConfig::from_file(&path).unwrap().config;
    assert_eq!(c.data_dir, PathBuf::from("/data/café"));
}

#[test]
fn sample_conf_zoo_cfg_loads_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/zoo.cfg");
    let loaded = ServerConfig::from_file(&path).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.data_dir, PathBuf::from("./target/zookeeper-data"));
    assert_eq!(c.client_port, Some(2181));
    assert!(!c.is_distributed());
    for word in ["ruok", "srvr", "stat", "mntr", "conf", "envi", "isro"] {
        assert!(c.is_four_letter_word_enabled(word), "{word}");
    }
}
