# zookeeper-rs %post: the data and log directories. An existing directory keeps
# the owner and mode it has (systemd's StateDirectory= and LogsDirectory= hand
# them to the user at start anyway).
for dir in /var/lib/zookeeper /var/log/zookeeper; do
    if [ ! -d "$dir" ]; then
        mkdir -p -m 0750 "$dir"
        chown zookeeper:zookeeper "$dir"
    fi
done
# Running servers are not restarted on upgrade: restarting every member of an
# ensemble at once would drop its quorum. Restart them one at a time.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
