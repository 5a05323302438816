#include "memcached_cfg/messages/errors.hpp"

#include <cstring>

#include <caf/message.hpp>

namespace mcfg {

const char* to_string(errc x) {
  switch (x) {
    case errc::file_operation_failed:
      return "file_operation_failed";
    case errc::write_deadline_exceeded:
      return "write_deadline_exceeded";
    case errc::invalid_content:
      return "invalid_content";
    case errc::writer_stopped:
      return "writer_stopped";
    case errc::invalid_source:
      return "invalid_source";
    case errc::unknown_file:
      return "unknown_file";
    case errc::refresh_failed:
      return "refresh_failed";
    case errc::refresher_stopped:
      return "refresher_stopped";
    case errc::verify_failed:
      return "verify_failed";
    case errc::node_starting:
      return "node_starting";
  }
  return "unknown";
}

caf::error make_file_error(const std::string& op, const std::string& path,
                           int os_errno) {
  return caf::make_error(errc::file_operation_failed, op, path,
                         std::string{std::strerror(os_errno)});
}

namespace {

std::string text_at(const caf::message& ctx, size_t pos) {
  if (pos < ctx.size() && ctx.match_element<std::string>(pos))
    return ctx.get_as<std::string>(pos);
  return {};
}

} // namespace

std::string render_error(uint8_t code, const caf::message& ctx) {
  switch (static_cast<errc>(code)) {
    case errc::file_operation_failed:
      return text_at(ctx, 0) + " " + text_at(ctx, 1)
             + " failed: " + text_at(ctx, 2);
    case errc::write_deadline_exceeded:
      return "gave up writing " + text_at(ctx, 0) + " after " + text_at(ctx, 4)
             + " of failures: last " + text_at(ctx, 1) + " " + text_at(ctx, 2)
             + " failed: " + text_at(ctx, 3);
    case errc::invalid_content:
      return "refused to write " + text_at(ctx, 0) + ": " + text_at(ctx, 1);
    case errc::writer_stopped:
      return "writer of " + text_at(ctx, 0)
             + " stopped before the file was written";
    case errc::invalid_source:
      return "source refused: " + text_at(ctx, 0);
    case errc::unknown_file:
      return "no file named " + text_at(ctx, 0) + " is kept by this node";
    case errc::refresh_failed:
      return "refresh of " + text_at(ctx, 0) + " failed: " + text_at(ctx, 1);
    case errc::refresher_stopped:
      return "refresher stopped before " + text_at(ctx, 0) + " was refreshed";
    case errc::verify_failed:
      return text_at(ctx, 0) + ": version " + text_at(ctx, 1)
             + " not confirmed: " + text_at(ctx, 2);
    case errc::node_starting:
      return text_at(ctx, 0); // "starting: ..."
  }
  return "mcfg error " + std::to_string(code) + " " + caf::to_string(ctx);
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == errc_category)
    return render_error(err.code(), err.context());
  return caf::to_string(err);
}

} // namespace mcfg
