# %postun of vaulthalla ($1: 0 on erase, 1 or more on upgrade). Erasing keeps the data
# (/var/lib/vaulthalla), the config (/etc/vaulthalla; a changed config.yaml is kept as
# config.yaml.rpmsave) and the vaulthalla user: delete those by hand to remove the node for good.
set -e

if [ "$1" -eq 0 ]; then
    rm -rf /run/vaulthalla /run/vaulthalla-swtpm
    # Only ever rmdir a mount point: a vault still mounted there must not be emptied.
    rmdir /mnt/vaulthalla 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    if [ "$1" -ge 1 ]; then
        # Upgrade: a running node moves to the new binary.
        systemctl try-restart vaulthalla.service || true
    fi
fi
