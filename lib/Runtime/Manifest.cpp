//===- Manifest.cpp - the JSON manifest next to each kernel ---------------===//

#include "attn/Runtime/Manifest.h"
#include "attn/Runtime/KernelArgs.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace attn {

using json = nlohmann::ordered_json;

std::array<int64_t, 3> KernelManifest::gridFor(const ExecInputs &in) const {
  std::array<int64_t, 3> g{};
  for (int i = 0; i < 3; ++i) {
    const GridTerm &t = grid[i];
    int64_t v = t.value;
    if (t.symbol == "B")
      v = in.B;
    else if (t.symbol == "Hq")
      v = in.Hq;
    else if (t.symbol == "Sq")
      v = in.Sq;
    if (!t.symbol.empty())
      v = (v + t.divisor - 1) / t.divisor;
    g[i] = v;
  }
  return g;
}

std::array<int64_t, 3> KernelManifest::launchGridFor(const ExecInputs &in,
                                                     int64_t multiprocessors) const {
  std::array<int64_t, 3> g = gridFor(in);
  if (persistentBlocksPerSm <= 0)
    return g;
  int64_t items = g[0] * g[1] * g[2];
  return {std::min(items, std::max<int64_t>(1, multiprocessors) * persistentBlocksPerSm), 1, 1};
}

std::string KernelManifest::toJson(const std::string &specJson,
                                   const std::string &extraJson) const {
  json j;
  j["format"] = kFormat;
  j["name"] = name;
  j["entry"] = entry;
  j["chip"] = chip;
  j["ptx"] = ptxFile;
  j["cubin"] = cubinFile.empty() ? json(nullptr) : json(cubinFile);
  json launch;
  launch["block"] = {block[0], block[1], block[2]};
  json gridJson = json::array();
  for (const GridTerm &t : grid) {
    if (t.symbol.empty())
      gridJson.push_back({{"value", t.value}});
    else
      gridJson.push_back({{"symbol", t.symbol}, {"ceil_div", t.divisor}});
  }
  launch["grid"] = gridJson;
  launch["dynamic_shared_memory"] = dynamicSharedMemory;
  if (persistentBlocksPerSm > 0)
    launch["persistent_blocks_per_sm"] = persistentBlocksPerSm;
  j["launch"] = launch;
  j["abi"] = "memref-descriptor: per argument {allocated ptr, aligned ptr, offset, "
             "sizes[rank], strides[rank]}, 8 bytes each, in this order; then one "
             "device pointer per tensor_maps entry (a 128-byte CUtensorMap the runtime "
             "encodes from that argument)";
  j["arguments"] = argumentRoles;
  if (!tensorMaps.empty()) {
    json maps = json::array();
    for (const TensorMapArgument &t : tensorMaps) {
      json entry = {{"argument", t.argument}, {"box", {t.boxCols, t.boxRows}},
                    {"swizzle", t.swizzle}};
      if (t.anyStrides)
        entry["any_strides"] = true;
      maps.push_back(entry);
    }
    j["tensor_maps"] = maps;
  }
  j["sha256"] = sha256;
  if (!tuningGroup.empty()) {
    json options = json::parse(tuningOptions.empty() ? "{}" : tuningOptions, nullptr, false);
    j["tuning"] = {{"group", tuningGroup},
                   {"candidate", tuningCandidate},
                   {"options", options.is_object() ? options : json::object()}};
  }
  if (!dispatch.empty()) {
    json variants = json::array();
    for (const SeqVariant &v : dispatch)
      variants.push_back({{"min_seq_k", v.minSeqK}, {"manifest", v.manifest}});
    j["dispatch"] = variants;
  }
  j["spec"] = json::parse(specJson, nullptr, false);
  json extra = json::parse(extraJson, nullptr, false);
  if (extra.is_object())
    for (auto &[k, v] : extra.items())
      j[k] = v;
  return j.dump(2) + "\n";
}

namespace {

bool fail(std::string &error, const std::string &path, const std::string &msg) {
  error = path + ": " + msg;
  return false;
}

} // namespace

int KernelManifest::selectVariant(int64_t sk) const {
  int chosen = -1;
  for (size_t i = 0; i < dispatch.size(); ++i)
    if (sk >= dispatch[i].minSeqK)
      chosen = int(i);
  return chosen;
}

bool readDispatchVariant(const KernelManifest &m, size_t index, KernelManifest &variant,
                         std::string &error) {
  std::string path = m.directory + "/" + m.dispatch[index].manifest;
  std::string readError;
  if (!readManifest(path, variant, readError)) {
    error = "dispatch variant " + path + ": " + readError;
    return false;
  }
  // The roles a caller binds, the dynamic scheduler's counter aside (the
  // variants may differ in having one).
  auto boundRoles = [](const KernelManifest &k) {
    std::vector<std::string> roles = k.argumentRoles;
    if (k.hasTileCounter())
      roles.pop_back();
    return roles;
  };
  if (!variant.dispatch.empty() || boundRoles(variant) != boundRoles(m) ||
      variant.chip != m.chip) {
    error = "dispatch variant " + path +
            ": expected a kernel for the same chip and argument roles, with no dispatch of "
            "its own";
    return false;
  }
  return true;
}

bool readWholeFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return bool(in) || in.eof();
}

bool readManifest(const std::string &path, KernelManifest &m, std::string &error) {
  std::string text;
  if (!readWholeFile(path, text))
    return fail(error, path, "cannot open");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return fail(error, path, "not a JSON object");
  auto str = [&](const char *key, std::string &out) {
    if (!j.contains(key) || !j[key].is_string())
      return fail(error, path, std::string(key) + ": expected a string");
    out = j[key].get<std::string>();
    return true;
  };
  std::string format;
  if (!str("format", format))
    return false;
  if (format != KernelManifest::kFormat)
    return fail(error, path, "format: expected \"" + std::string(KernelManifest::kFormat) +
                                 "\", got \"" + format + "\"");
  if (!str("name", m.name) || !str("entry", m.entry) || !str("chip", m.chip) ||
      !str("ptx", m.ptxFile) || !str("sha256", m.sha256))
    return false;
  if (j.contains("cubin") && j["cubin"].is_string())
    m.cubinFile = j["cubin"].get<std::string>();
  if (!j.contains("launch") || !j["launch"].is_object())
    return fail(error, path, "launch: expected an object");
  const json &launch = j["launch"];
  if (!launch.contains("block") || !launch["block"].is_array() || launch["block"].size() != 3)
    return fail(error, path, "launch.block: expected 3 integers");
  for (int i = 0; i < 3; ++i) {
    if (!launch["block"][i].is_number_integer() || launch["block"][i].get<int64_t>() < 1)
      return fail(error, path, "launch.block[" + std::to_string(i) + "]: expected a positive integer");
    m.block[i] = launch["block"][i].get<int64_t>();
  }
  if (!launch.contains("grid") || !launch["grid"].is_array() || launch["grid"].size() != 3)
    return fail(error, path, "launch.grid: expected 3 terms");
  for (int i = 0; i < 3; ++i) {
    const json &t = launch["grid"][i];
    std::string where = "launch.grid[" + std::to_string(i) + "]";
    if (!t.is_object())
      return fail(error, path, where + ": expected an object");
    if (t.contains("value")) {
      if (!t["value"].is_number_integer() || t["value"].get<int64_t>() < 1)
        return fail(error, path, where + ".value: expected a positive integer");
      m.grid[i] = {"", 1, t["value"].get<int64_t>()};
      continue;
    }
    if (!t.contains("symbol") || !t["symbol"].is_string())
      return fail(error, path, where + ": expected \"value\" or \"symbol\"");
    std::string sym = t["symbol"].get<std::string>();
    if (sym != "B" && sym != "Hq" && sym != "Sq")
      return fail(error, path, where + ".symbol: expected B, Hq or Sq, got \"" + sym + "\"");
    int64_t div = 1;
    if (t.contains("ceil_div")) {
      if (!t["ceil_div"].is_number_integer() || t["ceil_div"].get<int64_t>() < 1)
        return fail(error, path, where + ".ceil_div: expected a positive integer");
      div = t["ceil_div"].get<int64_t>();
    }
    m.grid[i] = {sym, div, 1};
  }
  if (launch.contains("dynamic_shared_memory")) {
    if (!launch["dynamic_shared_memory"].is_number_integer())
      return fail(error, path, "launch.dynamic_shared_memory: expected an integer");
    m.dynamicSharedMemory = launch["dynamic_shared_memory"].get<int64_t>();
  }
  if (launch.contains("persistent_blocks_per_sm")) {
    const json &n = launch["persistent_blocks_per_sm"];
    if (!n.is_number_integer() || n.get<int64_t>() < 1)
      return fail(error, path, "launch.persistent_blocks_per_sm: expected a positive integer");
    m.persistentBlocksPerSm = n.get<int64_t>();
  }
  if (!j.contains("spec") || !j["spec"].is_object())
    return fail(error, path, "spec: expected the spec object the kernel was compiled from");
  auto spec = std::make_unique<Spec>();
  std::string specError;
  if (!parseSpec(j["spec"].dump(), *spec, specError))
    return fail(error, path, "spec." + specError);
  if (!j.contains("arguments") || !j["arguments"].is_array())
    return fail(error, path, "arguments: expected an array of roles");
  m.argumentRoles.clear();
  for (const json &r : j["arguments"]) {
    if (!r.is_string())
      return fail(error, path, "arguments: expected strings");
    m.argumentRoles.push_back(r.get<std::string>());
  }
  // The ABI is derived from the spec; a manifest that disagrees is stale.
  // The dynamic scheduler's counter (role tile_counter) may follow the
  // spec's arguments, last.
  std::vector<std::string> specRoles(m.argumentRoles);
  if (!specRoles.empty() && specRoles.back() == kTileCounterRole)
    specRoles.pop_back();
  if (std::count(specRoles.begin(), specRoles.end(), kTileCounterRole))
    return fail(error, path, "arguments: tile_counter must be the last argument");
  if (specRoles != argumentRoles(*spec, /*withLse=*/true) &&
      specRoles != argumentRoles(*spec, /*withLse=*/false))
    return fail(error, path, "arguments: do not match the argument list of the spec");
  m.tensorMaps.clear();
  if (j.contains("tensor_maps")) {
    if (!j["tensor_maps"].is_array())
      return fail(error, path, "tensor_maps: expected an array");
    for (size_t i = 0; i < j["tensor_maps"].size(); ++i) {
      const json &t = j["tensor_maps"][i];
      std::string where = "tensor_maps[" + std::to_string(i) + "]";
      auto positive = [](const json &v) { return v.is_number_integer() && v.get<int64_t>() > 0; };
      if (!t.is_object() || !t.contains("argument") || !t["argument"].is_number_integer() ||
          t["argument"].get<int64_t>() < 0 ||
          t["argument"].get<int64_t>() >= int64_t(m.argumentRoles.size()))
        return fail(error, path, where + ".argument: expected an argument index below " +
                                     std::to_string(m.argumentRoles.size()));
      if (!t.contains("box") || !t["box"].is_array() || t["box"].size() != 2 ||
          !positive(t["box"][0]) || !positive(t["box"][1]) ||
          t["box"][0].get<int64_t>() > 256 || t["box"][1].get<int64_t>() > 256)
        return fail(error, path, where + ".box: expected [columns, rows], each in [1, 256]");
      int64_t swizzle = t.value("swizzle", json(0)).is_number_integer()
                            ? t.value("swizzle", json(0)).get<int64_t>()
                            : -1;
      if (swizzle != 0 && swizzle != 32 && swizzle != 64 && swizzle != 128)
        return fail(error, path, where + ".swizzle: expected 0, 32, 64 or 128");
      json anyStrides = t.value("any_strides", json(false));
      if (!anyStrides.is_boolean())
        return fail(error, path, where + ".any_strides: expected true or false");
      m.tensorMaps.push_back({t["argument"].get<int64_t>(), t["box"][0].get<int64_t>(),
                              t["box"][1].get<int64_t>(), swizzle, anyStrides.get<bool>()});
    }
  }
  m.tuningGroup.clear();
  m.tuningCandidate.clear();
  m.tuningOptions.clear();
  if (j.contains("tuning")) {
    const json &t = j["tuning"];
    auto nonEmpty = [&](const char *key) {
      return t.contains(key) && t[key].is_string() && !t[key].get<std::string>().empty();
    };
    if (!t.is_object() || !nonEmpty("group") || !nonEmpty("candidate"))
      return fail(error, path, "tuning: expected {\"group\": string, \"candidate\": string, "
                               "\"options\": object}");
    if (t.contains("options") && !t["options"].is_object())
      return fail(error, path, "tuning.options: expected an object");
    m.tuningGroup = t["group"].get<std::string>();
    m.tuningCandidate = t["candidate"].get<std::string>();
    m.tuningOptions = t.contains("options") ? t["options"].dump() : "{}";
  }
  m.dispatch.clear();
  if (j.contains("dispatch")) {
    const json &d = j["dispatch"];
    if (!d.is_array())
      return fail(error, path, "dispatch: expected an array of {\"min_seq_k\", \"manifest\"}");
    for (size_t i = 0; i < d.size(); ++i) {
      const json &v = d[i];
      std::string where = "dispatch[" + std::to_string(i) + "]";
      if (!v.is_object() || !v.contains("min_seq_k") || !v["min_seq_k"].is_number_integer() ||
          v["min_seq_k"].get<int64_t>() < 1)
        return fail(error, path, where + ".min_seq_k: expected a positive integer");
      if (!v.contains("manifest") || !v["manifest"].is_string() ||
          v["manifest"].get<std::string>().empty() ||
          v["manifest"].get<std::string>().find('/') != std::string::npos)
        return fail(error, path,
                    where + ".manifest: expected the file name of a manifest in this directory");
      int64_t minSeqK = v["min_seq_k"].get<int64_t>();
      if (!m.dispatch.empty() && minSeqK <= m.dispatch.back().minSeqK)
        return fail(error, path, where + ".min_seq_k: expected increasing values");
      m.dispatch.push_back({minSeqK, v["manifest"].get<std::string>()});
    }
  }
  m.spec = std::move(spec);
  auto slash = path.find_last_of('/');
  m.directory = slash == std::string::npos ? "." : path.substr(0, slash);
  return true;
}

void markAnyStrides(const std::vector<int64_t> &argumentParameters,
                    const std::vector<bool> &usedParameters,
                    std::vector<TensorMapArgument> &tensorMaps) {
  std::vector<int64_t> first;
  int64_t total = 0;
  for (int64_t count : argumentParameters) {
    first.push_back(total);
    total += count;
  }
  if (total == 0 || total != int64_t(usedParameters.size()))
    return;
  for (TensorMapArgument &map : tensorMaps) {
    if (map.argument < 0 || map.argument >= int64_t(first.size()) ||
        argumentParameters[map.argument] < 3)
      continue;
    // {allocated, aligned, offset, sizes[rank], strides[rank]}: only sizes
    // may be used.
    int64_t begin = first[map.argument], count = argumentParameters[map.argument];
    int64_t rank = (count - 3) / 2;
    bool unused = true;
    for (int64_t p = begin; p < begin + count; ++p)
      if (p < begin + 3 || p >= begin + 3 + rank)
        unused = unused && !usedParameters[p];
    map.anyStrides = unused;
  }
}

} // namespace attn
