/* main.c - mediarelay-m3u8: HLS playlists and DASH manifests. */
#include "fcgi/m3u8/handlers.h"

#include "app/server.h"

static const struct mr_route routes[] = {
    { MR_GET, "/api/health", mr_handle_health, 0 },
    { MR_GET, "/api/health/m3u8", mr_handle_health, 0 },
    { MR_GET, "/api/media/{id}/index.m3u8", mr_hls_media_playlist, MR_ROUTE_MEDIA },
    { MR_GET, "/api/media/{id}/manifest.mpd", mr_dash_media_manifest, MR_ROUTE_MEDIA },
    { MR_GET, "/api/m3u8/{token}.m3u8", mr_hls_nested_playlist, 0 },
    { MR_GET, "/api/m3u8/{token}.mpd", mr_dash_nested_manifest, 0 },
    { MR_GET, "/live/channels.m3u", mr_hls_channel_list, 0 },
    { MR_GET, "/live/{channel}.m3u8", mr_hls_channel_playlist, 0 },
    { 0 }
};

static const struct mr_app app = {
    .name = "m3u8",
    .routes = routes,
};

int main(int argc, char **argv)
{
    return mr_server_main(&app, argc, argv);
}
