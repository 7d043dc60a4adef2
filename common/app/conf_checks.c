/* conf_checks.c - the configuration checks of the layers above the loader,
 * in the order they run (core/config.h, struct mr_conf_check). */
#include "core/config.h"

#include "app/media.h"
#include "format/channels.h"
#include "net/netguard.h"

const struct mr_conf_check mr_conf_checks[] = {
    { "netguard", mr_netguard_conf_check },
    { "channels_m3u", mr_channels_conf_import },
    { "media", mr_media_conf_check },
    { 0 }
};
