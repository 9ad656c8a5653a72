//! Four-letter words, in the shapes monitoring tools and operators' scripts parse: `ruok`,
//! `srvr` and `stat` (Curator, Datadog, zkServer.sh status), `mntr` (telegraf, Datadog,
//! Prometheus exporters, Solr), `envi` (kazoo's `server_version()`), the connection and watch
//! reports, `dump`, `conf`, `dirs`, `isro`, the stat resets, and the whitelist.
//!
//! Each check runs against our server and against Debian's Apache ZooKeeper 3.8 put in the same
//! state; `outputs_match_apache_line_by_line` compares the two servers' text directly where it
//! is deterministic.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::raw::RawClient;
use common::support::{on_both, raw_client, raw_create, raw_exists};
use common::{apache_available, four_letter_at, ApacheServer, Server, ZkUnderTest};

/// Node count of the state [`known_state`] builds: the root, /zookeeper, /zookeeper/quota,
/// /zookeeper/config, /x and /x/e.
const NODE_COUNT: u64 = 7;
/// The zxid after [`known_state`]: session creation (the harness's probe and ours) and two
/// creates, as Apache numbers them too.
const ZXID: &str = "0x5";
/// Apache's approximate data size (path and data lengths) of that tree.
const DATA_SIZE: u64 = 53;

/// One session with a node, an ephemeral child, a data watch and an exists watch on a missing
/// node. The session stays open while the returned client lives.
fn known_state(addr: SocketAddr) -> RawClient {
    let mut client = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/x", b"abc", 0), 0);
    assert_eq!(raw_create(&mut client, "/x/e", b"", 1), 0);
    assert_eq!(raw_exists(&mut client, "/x", true).0, 0);
    assert_eq!(raw_exists(&mut client, "/missing", true).0, -101);
    client
}

fn is_ours(server: &dyn ZkUnderTest) -> bool {
    server.name() == "zookeeper-rs"
}

/// `key: value` lines as pairs, in order.
fn colon_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Digits separated by dots then a dash, as `3.9.3-…`: what version parsers split on.
fn version_triple(version: &str) -> Option<(u32, u32, u32)> {
    let (numbers, _) = version.split_once('-')?;
    let mut parts = numbers.split('.').map(|p| p.parse::<u32>().ok());
    let triple = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(triple)
}

/// Kazoo's `r'zookeeper.version=(\d+)\.(\d+)\.(\d+)'` searched in `envi` output: the first
/// `zookeeper` + any character + `version=` followed by three dotted numbers.
fn kazoo_server_version(envi: &str) -> Option<(u32, u32, u32)> {
    let bytes = envi.as_bytes();
    for start in 0..bytes.len() {
        let rest = &envi[start..];
        if !rest.starts_with("zookeeper") || rest.len() < 10 || !rest.is_char_boundary(10) {
            continue;
        }
        let Some(after) = rest[10..].strip_prefix("version=") else {
            continue;
        };
        let mut numbers = Vec::new();
        let mut tail = after;
        for i in 0..3 {
            let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            tail = &tail[digits.len()..];
            numbers.push(digits.parse::<u32>().ok()?);
            if i < 2 {
                match tail.strip_prefix('.') {
                    Some(t) => tail = t,
                    None => break,
                }
            }
        }
        if numbers.len() == 3 {
            return Some((numbers[0], numbers[1], numbers[2]));
        }
    }
    None
}

/// Java's `Double.toString` shapes: `0.0`, `2.0`, `0.4817`, `1.0E-4`.
fn is_java_double(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once('E') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let Some((whole, fraction)) = mantissa.split_once('.') else {
        return false;
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    // Java prints the shortest digits that round-trip: no trailing zeros but the one in "2.0".
    digits(whole)
        && digits(fraction)
        && (fraction == "0" || !fraction.ends_with('0'))
        && exponent.map_or(true, |e| digits(e.strip_prefix('-').unwrap_or(e)))
}

// --- ruok, isro ----------------------------------------------------------------------------------

fn ruok_and_isro(server: &dyn ZkUnderTest) {
    assert_eq!(server.four_letter("ruok"), "imok");
    assert_eq!(server.four_letter("isro"), "rw");
}
on_both!(ruok_is_imok_and_isro_is_rw, "", ruok_and_isro);

// --- srvr and stat -------------------------------------------------------------------------------

/// The summary lines `srvr` and `stat` share, as Datadog's check reads them in order.
fn check_summary(server: &dyn ZkUnderTest, pairs: &[(String, String)]) {
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Zookeeper version",
            "Latency min/avg/max",
            "Received",
            "Sent",
            "Connections",
            "Outstanding",
            "Zxid",
            "Mode",
            "Node count"
        ],
        "{}: summary keys",
        server.name()
    );
    let value = |key: &str| &pairs.iter().find(|(k, _)| k == key).unwrap().1;
    let version = value("Zookeeper version");
    let (major, minor, _) = version_triple(version.split(',').next().unwrap())
        .unwrap_or_else(|| panic!("unparsable version {version:?}"));
    if is_ours(server) {
        assert_eq!((major, minor), (3, 9), "we report a 3.9 version: {version}");
    }
    let latency: Vec<&str> = value("Latency min/avg/max").split('/').collect();
    assert_eq!(latency.len(), 3, "{latency:?}");
    assert!(latency[0].parse::<i64>().is_ok() && latency[2].parse::<i64>().is_ok());
    assert!(is_java_double(latency[1]), "average {:?}", latency[1]);
    for key in ["Received", "Sent", "Connections"] {
        assert!(value(key).parse::<u64>().is_ok(), "{key}: {}", value(key));
    }
    assert!(value("Connections").parse::<u64>().unwrap() >= 1);
    if is_ours(server) {
        assert_eq!(value("Outstanding"), "0");
    } else {
        // Apache's counter is decremented before it is incremented for the
        // very request that asks, so it can read -1 for an instant.
        assert!(
            ["0", "-1"].contains(&value("Outstanding").as_str()),
            "{}",
            value("Outstanding")
        );
    }
    assert_eq!(value("Zxid"), ZXID);
    assert!(i64::from_str_radix(value("Zxid").trim_start_matches("0x"), 16).is_ok());
    assert_eq!(value("Mode"), "standalone");
    assert_eq!(value("Node count").parse::<u64>().unwrap(), NODE_COUNT);
}

fn srvr_lines(server: &dyn ZkUnderTest) {
    let _client = known_state(server.addr());
    let srvr = server.four_letter("srvr");
    assert!(srvr.ends_with('\n'));
    check_summary(server, &colon_pairs(&srvr));
    assert_eq!(srvr.lines().count(), 9, "{srvr}");
}
on_both!(srvr_has_the_summary_lines, "", srvr_lines);

/// A `cons`/`stat` client line: ` /host:port[interest](key=value,…)`; returns the pairs.
fn client_line(line: &str) -> Vec<(String, String)> {
    let rest = line
        .strip_prefix(" /")
        .unwrap_or_else(|| panic!("client line {line:?}"));
    let (address, rest) = rest.split_once('[').expect("[interest]");
    assert!(address.parse::<SocketAddr>().is_ok(), "address in {line:?}");
    let (interest, rest) = rest.split_once("](").expect("](");
    assert!(interest.chars().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    let fields = rest.strip_suffix(')').expect("closing parenthesis");
    fields
        .split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("{kv:?} in {line:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn stat_lines(server: &dyn ZkUnderTest) {
    let _client = known_state(server.addr());
    let stat = server.four_letter("stat");
    let mut lines = stat.lines();
    assert!(lines.next().unwrap().starts_with("Zookeeper version: "));
    assert_eq!(lines.next(), Some("Clients:"));
    let mut clients = 0;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let keys: Vec<String> = client_line(line).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["queued", "recved", "sent"], "brief client line");
        clients += 1;
    }
    assert!(clients >= 1, "no client listed:\n{stat}");
    let rest: String = lines.map(|l| format!("{l}\n")).collect();
    let mut pairs = colon_pairs(stat.lines().next().unwrap());
    pairs.extend(colon_pairs(&rest));
    check_summary(server, &pairs);
}
on_both!(stat_lists_clients_then_the_summary, "", stat_lines);

// --- mntr ----------------------------------------------------------------------------------------

/// The keys telegraf, Datadog, the Prometheus exporters and Solr read from a standalone server.
const MNTR_KEYS: [&str; 18] = [
    "zk_version",
    "zk_server_state",
    "zk_avg_latency",
    "zk_max_latency",
    "zk_min_latency",
    "zk_packets_received",
    "zk_packets_sent",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_global_sessions",
    "zk_uptime",
    "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count",
    "zk_connection_rejected",
];

fn mntr_values(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 2, "not a key<TAB>value line: {line:?}");
        assert!(
            fields[0].starts_with("zk_")
                && fields[0]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "key {:?}",
            fields[0]
        );
        let repeated = values.insert(fields[0].to_string(), fields[1].to_string());
        assert!(repeated.is_none(), "{} twice", fields[0]);
    }
    values
}

fn mntr_lines(server: &dyn ZkUnderTest) {
    let _client = known_state(server.addr());
    let text = server.four_letter("mntr");
    assert!(text.ends_with('\n'));
    let values = mntr_values(&text);
    for key in MNTR_KEYS {
        assert!(values.contains_key(key), "{}: no {key}", server.name());
    }
    for (key, value) in &values {
        if key == "zk_version" || key == "zk_server_state" || key == "zk_last_zxid" {
            continue;
        }
        assert!(
            value.parse::<i64>().is_ok() || is_java_double(value),
            "{key} is not a number: {value:?}"
        );
    }
    let version = &values["zk_version"];
    let (major, minor, _) = version_triple(version.split(',').next().unwrap())
        .unwrap_or_else(|| panic!("unparsable zk_version {version:?}"));
    if is_ours(server) {
        assert_eq!((major, minor), (3, 9));
    }
    let number = |key: &str| values[key].parse::<u64>().unwrap();
    assert_eq!(values["zk_server_state"], "standalone");
    assert!(is_java_double(&values["zk_avg_latency"]));
    assert_eq!(number("zk_znode_count"), NODE_COUNT);
    assert_eq!(number("zk_ephemerals_count"), 1);
    assert_eq!(number("zk_watch_count"), 2);
    assert_eq!(number("zk_approximate_data_size"), DATA_SIZE);
    assert_eq!(number("zk_global_sessions"), 1);
    assert_eq!(number("zk_outstanding_requests"), 0);
    assert!(number("zk_num_alive_connections") >= 1);
    assert!(number("zk_open_file_descriptor_count") >= 1);
}
on_both!(mntr_is_tab_separated_with_monitoring_keys, "", mntr_lines);

// --- cons, crst, srst ----------------------------------------------------------------------------

/// The full `cons` line of the session connection (the one with a `sid`).
fn session_line(server: &dyn ZkUnderTest) -> Vec<(String, String)> {
    let cons = server.four_letter("cons");
    let lines: Vec<Vec<(String, String)>> = cons
        .lines()
        .filter(|l| !l.is_empty())
        .map(client_line)
        .filter(|pairs| pairs.iter().any(|(k, _)| k == "sid"))
        .collect();
    assert_eq!(lines.len(), 1, "one session connection in\n{cons}");
    lines.into_iter().next().unwrap()
}

fn cons_lines(server: &dyn ZkUnderTest) {
    let client = known_state(server.addr());
    let pairs = session_line(server);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "queued", "recved", "sent", "sid", "lop", "est", "to", "lcxid", "lzxid", "lresp",
            "llat", "minlat", "avglat", "maxlat"
        ]
    );
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!(value("sid"), format!("0x{:x}", client.session_id));
    assert_eq!(value("lop"), "EXIS", "the last request was an exists");
    assert_eq!(value("lcxid"), "0x4", "four requests so far");
    assert_eq!(value("lzxid"), ZXID);
    assert_eq!(value("to"), "10000");
    for key in [
        "queued", "recved", "sent", "est", "lresp", "llat", "minlat", "avglat", "maxlat",
    ] {
        assert!(value(key).parse::<i64>().is_ok(), "{key}={}", value(key));
    }
    assert!(value("recved").parse::<u64>().unwrap() >= 4);

    assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
    let reset = session_line(server);
    let value = |key: &str| reset.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!((value("recved"), value("sent")), ("0".into(), "0".into()));
    // Nothing arrived since the reset (recved=0): the last operation is
    // forgotten too.
    assert_eq!(value("lop"), "NA");
    assert!(reset.iter().all(|(k, _)| k != "lcxid"), "{reset:?}");
    assert_eq!(value("lzxid"), "0xffffffffffffffff");
    assert_eq!((value("lresp"), value("llat")), ("0".into(), "0".into()));

    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    let srvr = colon_pairs(&server.four_letter("srvr"));
    let received: u64 = srvr
        .iter()
        .find(|(k, _)| k == "Received")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(received <= 2, "srst left Received at {received}");
}
on_both!(cons_lines_and_stat_resets, "", cons_lines);

// --- conf, envi, dirs ----------------------------------------------------------------------------

const CONF_CFG: &str =
    "tickTime=500\nmaxClientCnxns=17\nminSessionTimeout=1500\nmaxSessionTimeout=9000";

fn conf_lines(server: &dyn ZkUnderTest) {
    let conf = server.four_letter("conf");
    let pairs: Vec<(String, String)> = conf
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "clientPort",
            "secureClientPort",
            "dataDir",
            "dataDirSize",
            "dataLogDir",
            "dataLogSize",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "clientPortListenBacklog",
            "serverId"
        ]
    );
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!(value("clientPort"), server.addr().port().to_string());
    assert_eq!(value("secureClientPort"), "-1");
    assert!(value("dataDir").starts_with(&server.data_dir().display().to_string()));
    assert!(value("dataDirSize").parse::<u64>().is_ok());
    assert_eq!(value("tickTime"), "500");
    assert_eq!(value("maxClientCnxns"), "17");
    assert_eq!(value("minSessionTimeout"), "1500");
    assert_eq!(value("maxSessionTimeout"), "9000");
    assert_eq!(value("clientPortListenBacklog"), "-1");
    assert_eq!(value("serverId"), "0");
}
on_both!(conf_lists_the_effective_settings, CONF_CFG, conf_lines);

fn envi_lines(server: &dyn ZkUnderTest) {
    let envi = server.four_letter("envi");
    let mut lines = envi.lines();
    assert_eq!(lines.next(), Some("Environment:"));
    for line in lines {
        assert!(line.contains('='), "{line:?}");
    }
    let (major, minor, _) = kazoo_server_version(&envi)
        .unwrap_or_else(|| panic!("kazoo cannot read the version from\n{envi}"));
    if is_ours(server) {
        assert_eq!((major, minor), (3, 9));
    }
    for key in [
        "zookeeper.version",
        "host.name",
        "os.name",
        "os.arch",
        "user.dir",
    ] {
        assert!(
            envi.lines().any(|l| l.starts_with(&format!("{key}="))),
            "no {key}"
        );
    }
}
on_both!(envi_reports_a_version_kazoo_parses, "", envi_lines);

fn dirs_lines(server: &dyn ZkUnderTest) {
    let dirs = server.four_letter("dirs");
    let pairs = colon_pairs(&dirs);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["datadir_size", "logdir_size"]);
    for (key, value) in &pairs {
        assert!(value.parse::<u64>().is_ok(), "{key}: {value}");
    }
}
on_both!(dirs_reports_two_sizes, "", dirs_lines);

// --- watches and dump ----------------------------------------------------------------------------

fn watch_reports(server: &dyn ZkUnderTest) {
    let client = known_state(server.addr());
    let sid = format!("0x{:x}", client.session_id);
    assert_eq!(
        server.four_letter("wchs"),
        "1 connections watching 2 paths\nTotal watches:2\n"
    );
    assert_eq!(
        server.four_letter("wchc"),
        format!("{sid}\n\t/missing\n\t/x\n\n")
    );
    assert_eq!(
        server.four_letter("wchp"),
        format!("/missing\n\t{sid}\n/x\n\t{sid}\n\n")
    );
}
on_both!(wchs_wchc_wchp_report_watches, "", watch_reports);

/// `Sun Nov 22 05:29:50 UTC 2026`, as Java's `Date.toString` prints in UTC.
fn is_java_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split(' ').collect();
    parts.len() == 6
        && parts[0].len() == 3
        && parts[1].len() == 3
        && parts[2].len() == 2
        && parts[3].len() == 8
        && parts[3].split(':').count() == 3
        && parts[5].parse::<u32>().is_ok()
}

/// Drops the empty expiry sets Apache leaves behind when a session moves to a later tick
/// (`0 expire at …`), and the set count that includes them.
fn without_empty_sets(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter(|l| !l.starts_with("0 expire at ") && !l.starts_with("Session Sets ("))
        .collect()
}

fn dump_lines(server: &dyn ZkUnderTest) {
    let client = known_state(server.addr());
    let sid = format!("0x{:x}", client.session_id);
    let dump = server.four_letter("dump");
    let header = dump.lines().nth(1).unwrap_or_default();
    assert!(
        header.starts_with("Session Sets (") && header.ends_with(")/(1):"),
        "{dump}"
    );
    let lines = without_empty_sets(&dump);
    assert_eq!(lines[0], "SessionTracker dump:");
    let expiry = lines[1]
        .strip_prefix("1 expire at ")
        .and_then(|l| l.strip_suffix(':'))
        .unwrap_or_else(|| panic!("{:?} in\n{dump}", lines[1]));
    // Java prints dates in the JVM's zone; these servers run in UTC.
    assert!(is_java_date(expiry), "{expiry:?}");
    assert_eq!(lines[2], format!("\t{sid}"));
    assert_eq!(
        &lines[3..8],
        [
            "ephemeral nodes dump:",
            "Sessions with Ephemerals (1):",
            &format!("{sid}:"),
            "\t/x/e",
            "Connections dump:"
        ],
        "{dump}"
    );
    // Apache also lists the connection asking for the dump, without a session.
    let header = lines[8];
    assert!(
        header.starts_with("Connections Sets (") && header.ends_with("):"),
        "{header:?}"
    );
    let session_connections: Vec<&&str> = lines[9..]
        .iter()
        .filter(|l| l.starts_with("\tip: /127.0.0.1:") && !l.ends_with("sessionId: 0x0"))
        .collect();
    assert_eq!(session_connections.len(), 1, "{dump}");
    assert!(session_connections[0].ends_with(&format!(" sessionId: {sid}")));
}
on_both!(
    dump_lists_sessions_ephemerals_and_connections,
    "",
    dump_lines
);

// --- whitelist -----------------------------------------------------------------------------------

fn refused(word: &str) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

fn whitelist_is_honoured(server: &dyn ZkUnderTest) {
    assert_eq!(server.four_letter("ruok"), "imok");
    assert!(server.four_letter("mntr").starts_with("zk_version\t"));
    for word in [
        "stat", "cons", "envi", "conf", "dump", "wchs", "wchc", "crst", "srst", "dirs",
    ] {
        assert_eq!(server.four_letter(word), refused(word), "{word}");
    }
    // srvr answers whatever the list says: ZooKeeper's own tools depend on it.
    assert!(server
        .four_letter("srvr")
        .starts_with("Zookeeper version: "));
}
on_both!(
    whitelist_limits_the_words,
    "4lw.commands.whitelist=ruok, mntr",
    whitelist_is_honoured
);

fn empty_whitelist_leaves_srvr(server: &dyn ZkUnderTest) {
    assert!(server
        .four_letter("srvr")
        .starts_with("Zookeeper version: "));
    for word in ["ruok", "mntr", "stat", "isro"] {
        assert_eq!(server.four_letter(word), refused(word), "{word}");
    }
}
on_both!(
    empty_whitelist_still_answers_srvr,
    "4lw.commands.whitelist=",
    empty_whitelist_leaves_srvr
);

/// Four bytes that are no word are read as a frame length (here far too long): the server
/// closes without answering.
fn unknown_word_closes(server: &dyn ZkUnderTest) {
    let answer = four_letter_at(server.addr(), "xxxx").unwrap_or_default();
    assert_eq!(answer, "");
    assert_eq!(server.four_letter("ruok"), "imok");
}
on_both!(unknown_word_gets_no_answer, "", unknown_word_closes);

// --- gtmk, stmk ----------------------------------------------------------------------------------

/// `stmk` reads the new mask as eight big-endian bytes after the word.
fn set_trace_mask(addr: SocketAddr, mask: i64) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut request = b"stmk".to_vec();
    request.extend_from_slice(&mask.to_be_bytes());
    stream.write_all(&request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn trace_mask_words(server: &dyn ZkUnderTest) {
    assert_eq!(server.four_letter("gtmk"), "306", "Apache's default mask");
    assert_eq!(set_trace_mask(server.addr(), 0x1f2), "498");
    assert_eq!(server.four_letter("gtmk"), "498");
}
on_both!(
    gtmk_and_stmk_get_and_set_the_trace_mask,
    "4lw.commands.whitelist=*",
    trace_mask_words
);

// --- side by side --------------------------------------------------------------------------------

/// Session ids and expiry dates differ between two correct servers.
fn mask(text: &str, session_id: i64) -> String {
    text.replace(&format!("0x{session_id:x}"), "<session>")
}

#[test]
fn outputs_match_apache_line_by_line() {
    if !apache_available() {
        return;
    }
    let ours = Server::start();
    let apache = ApacheServer::start();
    let ours_client = known_state(ours.addr());
    let apache_client = known_state(apache.addr());
    for word in ["ruok", "isro", "wchs", "wchc", "wchp"] {
        let expected = mask(&apache.four_letter(word), apache_client.session_id);
        let actual = mask(&ours.four_letter(word), ours_client.session_id);
        assert_eq!(actual, expected, "{word}");
    }
    // dump, up to the connections (Apache lists the dump's own connection there).
    let sections = |text: &str, sid: i64| -> Vec<String> {
        without_empty_sets(&mask(text, sid))
            .into_iter()
            .take_while(|l| *l != "Connections dump:")
            .map(|l| match l.split_once(" expire at ") {
                Some((count, _)) => format!("{count} expire at <date>:"),
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(
        sections(&ours.four_letter("dump"), ours_client.session_id),
        sections(&apache.four_letter("dump"), apache_client.session_id)
    );
    // srvr: same keys, and the same values where the state decides them.
    let srvr = |server: &dyn ZkUnderTest| -> Vec<(String, String)> {
        colon_pairs(&server.four_letter("srvr"))
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "Zxid" | "Mode" | "Node count" => (k, v),
                _ => (k, "<varies>".into()),
            })
            .collect()
    };
    assert_eq!(srvr(&ours), srvr(&apache));
    // mntr: every key we emit that Apache also knows carries the same kind of value, and the
    // tree-derived values agree.
    let ours_mntr = mntr_values(&ours.four_letter("mntr"));
    let apache_mntr = mntr_values(&apache.four_letter("mntr"));
    for key in [
        "zk_server_state",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_approximate_data_size",
        "zk_global_sessions",
    ] {
        assert_eq!(ours_mntr[key], apache_mntr[key], "{key}");
    }
    // envi: our keys are Apache's keys, in Apache's order.
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let apache_keys = keys(&apache.four_letter("envi"));
    let ours_keys = keys(&ours.four_letter("envi"));
    let positions: Vec<usize> = ours_keys
        .iter()
        .map(|k| {
            apache_keys
                .iter()
                .position(|a| a == k)
                .unwrap_or_else(|| panic!("envi key {k} is not Apache's"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "envi keys out of Apache's order: {ours_keys:?}"
    );
    drop(ours_client);
    drop(apache_client);
}

/// `dirs` and `mntr` report what the transaction log and the snapshots take
/// on disk.
#[test]
fn dirs_and_mntr_report_log_and_snapshot_sizes() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = common::connect(&server.connect_string()).await;
        c.create(
            "/sized",
            &[1u8; 1000],
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::anyone_all()),
        )
        .await
        .unwrap();
    });
    let size = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.trim_start_matches([':', '\t', ' '])
                    .trim()
                    .parse()
                    .unwrap()
            })
            .unwrap_or_else(|| panic!("{key} missing from:\n{text}"))
    };
    let mntr = server.four_letter("mntr");
    assert!(size(&mntr, "zk_log_dir_size") > 1000, "{mntr}");
    assert!(size(&mntr, "zk_data_dir_size") > 0, "{mntr}");
    let dirs = server.four_letter("dirs");
    assert!(size(&dirs, "logdir_size") > 1000, "{dirs}");
}
