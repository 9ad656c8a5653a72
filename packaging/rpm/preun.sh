# zookeeper-rs %preun: on erase (not upgrade), stop the servers before their
# binary goes away.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop zookeeper.service 'zookeeper@*.service' >/dev/null 2>&1 || :
fi
exit 0
