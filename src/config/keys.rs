//! Which zoo.cfg keys Apache ZooKeeper 3.9 documents or reads, sorted by how we treat them.

/// Keys that Apache reads only from zoo.cfg (QuorumPeerConfig parses them itself), so a
/// `-Dzookeeper.<key>` flag has no effect on them.
pub(crate) const FILE_ONLY_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "tickTime",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
];

/// Typed keys that Apache reads from a Java system property: zoo.cfg's `<key>` becomes the
/// property `zookeeper.<key>`, so operators also pass them as `-Dzookeeper.<key>=…`.
pub(crate) const SYSTEM_PROPERTY_KEYS: &[&str] = &[
    "DigestAuthenticationProvider.superDigest",
    "skipACL",
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "enforceQuota",
    "globalOutstandingLimit",
    "snapCount",
    "commitLogCount",
    "preAllocSize",
    "forceSync",
    "leaderServes",
    "maxCnxns",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "datadir.autocreate",
    "multiAddress.enabled",
];

/// Typed keys whose system property carries no `zookeeper.` prefix.
pub(crate) const UNPREFIXED_SYSTEM_PROPERTY_KEYS: &[&str] =
    &["jute.maxbuffer", "readonlymode.enabled"];

/// Keys Apache documents or reads that this server accepts and keeps (in
/// `ServerConfig::other`) without acting on them.
pub(crate) const KEYS_WITHOUT_EFFECT: &[&str] = &[
    "admin.forceHttps",
    "admin.idleTimeout",
    "admin.needClientAuth",
    "admin.portUnification",
    "admin.rateLimiterIntervalInMS",
    "admin.restore.enabled",
    "admin.snapshot.enabled",
    "advancedFlowControlEnabled",
    "allowSaslFailedClients",
    "audit.enable",
    "audit.impl.class",
    "authProvider",
    "bitHashCacheSize",
    "client.certReload",
    "client.secure",
    "client.portUnification",
    "closeSessionTxn.enabled",
    "cnxTimeout",
    "commitProcessor.maxCommitBatchSize",
    "commitProcessor.maxReadBatchSize",
    "commitProcessor.numWorkerThreads",
    "commitProcessor.shutdownTimeout",
    "connectionDecreaseRatio",
    "connectionDropDecrease",
    "connectionDropIncrease",
    "connectionFreezeTime",
    "connectionMaxTokens",
    "connectionTokenFillCount",
    "connectionTokenFillTime",
    "connection_throttle_global_session_weight",
    "connection_throttle_local_session_weight",
    "connection_throttle_renew_session_weight",
    "connection_throttle_weight_enabled",
    "db.autocreate",
    "digest.enabled",
    "DigestAuthenticationProvider.digestAlg",
    "DigestAuthenticationProvider.enabled",
    "electionPortBindRetry",
    "emulate353TTLNodes",
    "enableEagerACLCheck",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "ensembleAuthName",
    "fastleader.maxNotificationInterval",
    "fastleader.minNotificationInterval",
    "fips-mode",
    "flushDelay",
    "follower.skipLearnerRequestToNextProcessor",
    "forward_learner_requests_to_commit_processor_disabled",
    "fsync.warningthresholdms",
    "IPAuthenticationProvider.usexforwardedfor",
    "jute.maxbuffer.extrasize",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.monitor",
    "jvm.pause.sleep.time.ms",
    "jvm.pause.warn-threshold.ms",
    "kerberos.canonicalizeHostNames",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "leader.closeSocketAsync",
    "leader.maxTimeToWaitForEpoch",
    "learner.asyncSending",
    "learner.closeSocketAsync",
    "maxBatchSize",
    "maxConcurrentDiffSyncs",
    "maxConcurrentSnapSyncs",
    "maxGetChildrenResponseCacheSize",
    "maxInProcessingDeadWatchers",
    "maxResponseCacheSize",
    "maxTimeToWaitForEpoch",
    "maxWriteQueuePollTime",
    "messageTracker.BufferSize",
    "messageTracker.Enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "netty.server.earlyDropSecureConnectionHandshakes",
    "nio.directBufferBytes",
    "nio.numSelectorThreads",
    "nio.numWorkerThreads",
    "nio.sessionlessCnxnTimeout",
    "nio.shutdownTimeout",
    "observer.election.DelayMs",
    "observer.reconnectDelayMs",
    "observer.syncEnabled",
    "oraclePath",
    "outstandingHandshake.limit",
    "portUnification",
    "quorum.cnxn.threads.size",
    "quorumCnxnTimeoutMs",
    "requireClientAuthScheme",
    "request_throttler.shutdownTimeout",
    "requestStaleConnectionCheck",
    "requestStaleLatencyCheck",
    "requestThrottleDropStale",
    "requestThrottleLimit",
    "requestThrottleStallTime",
    "serializeLastProcessedZxid.enabled",
    "serverCnxnFactory",
    "sessionRequireClientSASLAuth",
    "snapSizeLimitInKb",
    "snapshot.compression.method",
    "snapshot.trust.empty",
    "snapshotSizeFactor",
    "sslQuorum",
    "sslQuorumReloadCertFiles",
    "superUser",
    "tcpKeepAlive",
    "clientTcpKeepAlive",
    "throttledOpWaitTime",
    "txnLogSizeLimitInKb",
    "version",
    "watchManagerName",
    "watcherCleanIntervalInSeconds",
    "watcherCleanThreadsNum",
    "watcherCleanThreshold",
    "X509AuthenticationProvider.superUser",
    "znode.container.checkIntervalMs",
    "znode.container.maxNeverUsedIntervalMs",
    "znode.container.maxPerMinute",
];

/// Families of keys accepted without effect: TLS settings, metrics exporters, hierarchical
/// quorum groups and weights, authentication providers, SASL.
pub(crate) const PREFIXES_WITHOUT_EFFECT: &[&str] = &[
    "sasl.",
    "ssl.",
    "metricsProvider.",
    "group.",
    "weight.",
    "authProvider.",
    "quorum.auth.",
];

/// `-Dzookeeper.*` properties that Apache's launch scripts set for logging and JMX; they
/// are not configuration and are skipped without a warning.
pub(crate) const LAUNCHER_PROPERTIES: &[&str] = &[
    "zookeeper.log.dir",
    "zookeeper.log.file",
    "zookeeper.log.threshold",
    "zookeeper.console.threshold",
    "zookeeper.tracelog.dir",
    "zookeeper.tracelog.file",
    "zookeeper.jmx.log4j.disable",
    "zookeeper.clientCnxnSocket",
];

/// True when Apache documents `key` but this server has no typed setting for it.
pub(crate) fn is_key_without_effect(key: &str) -> bool {
    KEYS_WITHOUT_EFFECT.contains(&key)
        || PREFIXES_WITHOUT_EFFECT
            .iter()
            .any(|prefix| key.starts_with(prefix) && key.len() > prefix.len())
}

/// Every plain key spelling we recognise, for suggesting a fix for a misspelt key.
pub(crate) fn all_plain_keys() -> impl Iterator<Item = &'static str> {
    FILE_ONLY_KEYS
        .iter()
        .chain(SYSTEM_PROPERTY_KEYS)
        .chain(UNPREFIXED_SYSTEM_PROPERTY_KEYS)
        .chain(KEYS_WITHOUT_EFFECT)
        .chain(std::iter::once(&super::LOG_LEVEL_KEY))
        .copied()
}
