# zookeeper-rs %postun: rpm has no purge, so erasing keeps the data in
# /var/lib/zookeeper, the logs, the members' configurations in
# /etc/zookeeper/N and the zookeeper user; delete them by hand if unwanted.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
