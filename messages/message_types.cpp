#include "memcached_cfg/messages/message_types.hpp"

#include <caf/actor_system_config.hpp>

#include "memcached_cfg/messages/config_change.hpp"
#include "memcached_cfg/messages/errors.hpp"
#include "memcached_cfg/messages/node_status.hpp"
#include "memcached_cfg/messages/writer_status.hpp"

namespace mcfg {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<config_change>("mcfg::config_change");
  cfg.add_message_type<config_update>("mcfg::config_update");
  cfg.add_message_type<writer_status>("mcfg::writer_status");
  cfg.add_message_type<snapshot>("mcfg::snapshot");
  cfg.add_message_type<source_status>("mcfg::source_status");
  cfg.add_message_type<refresh_status>("mcfg::refresh_status");
  cfg.add_message_type<std::vector<writer_status>>("mcfg::writer_statuses");
  cfg.add_message_type<std::vector<refresh_status>>("mcfg::refresh_statuses");
  cfg.add_message_type<node_status>("mcfg::node_status");
  cfg.add_message_type<file_sync>("mcfg::file_sync");
  cfg.add_message_type<std::vector<file_sync>>("mcfg::file_syncs");
  cfg.add_error_category(errc_category, [](uint8_t code, caf::atom_value,
                                           const caf::message& ctx) {
    return render_error(code, ctx);
  });
}

} // namespace mcfg
