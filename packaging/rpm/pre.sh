# zookeeper-rs %pre: the system user and group the servers run as
# (the same as /usr/lib/sysusers.d/zookeeper-rs.conf describes).
getent group zookeeper >/dev/null || groupadd --system zookeeper
if ! getent passwd zookeeper >/dev/null; then
    useradd --system --gid zookeeper --home-dir /var/lib/zookeeper \
        --no-create-home --shell /sbin/nologin \
        --comment "zookeeper-rs coordination server" zookeeper
fi
exit 0
