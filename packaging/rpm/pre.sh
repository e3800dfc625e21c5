# %pre of vaulthalla ($1: 1 on install, 2 or more on upgrade): the service account, before the
# files it owns are laid down. Safe to run any number of times.
set -e

SERVICE_USER=vaulthalla

nologin_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin; do
        if [ -x "$shell" ]; then
            echo "$shell"
            return 0
        fi
    done
    echo /bin/false
}

# The vaulthalla system user and group; the user joins tss for the TPM (/dev/tpmrm0).
if ! getent group tss >/dev/null; then
    groupadd --system tss
fi
if ! getent group "$SERVICE_USER" >/dev/null; then
    groupadd --system "$SERVICE_USER"
fi
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --gid "$SERVICE_USER" --home-dir /var/lib/vaulthalla --no-create-home \
        --shell "$(nologin_shell)" --comment "Vaulthalla storage node" "$SERVICE_USER"
fi
case " $(id -nG "$SERVICE_USER") " in
    *" tss "*) ;;
    *) usermod --append --groups tss "$SERVICE_USER" ;;
esac
