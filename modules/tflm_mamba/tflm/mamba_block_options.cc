// Parsing of MAMBA_BLOCK's custom options (mamba_block_options.h).
//
// The bytes come from a model file: the flexbuffer is verified before it is read, every key
// must be one of ours with the type we expect, every integer must fit int32. The values are
// range-checked later, in one place (tm_validate_block_*, mamba_validate.h, from Prepare).
#include "mamba_block_options.h"

#include <stdint.h>
#include <string.h>

#include "flatbuffers/flexbuffers.h"

namespace tflm_mamba {
namespace {

constexpr int64_t kOptionsVersion = 1;  // fused_tflite.OPTIONS_VERSION

struct EnumName {
  const char* name;
  int value;
};

constexpr EnumName kDecays[] = {{"exp", TM_DECAY_EXP},
                                {"sigmoid", TM_DECAY_SIGMOID}};
constexpr EnumName kDtActivations[] = {{"relu", TM_DT_RELU},
                                       {"softplus", TM_DT_SOFTPLUS}};
constexpr EnumName kActivations[] = {{"silu", TM_ACT_SILU},
                                     {"hard_swish", TM_ACT_HARD_SWISH}};
constexpr EnumName kNorms[] = {{"none", TM_NORM_NONE},
                               {"rmsnorm", TM_NORM_RMSNORM},
                               {"affine", TM_NORM_AFFINE}};

void Fail(MambaBlockOptions* o, const char* error, const char* key) {
  if (o->error == nullptr) {
    o->error = error;
    o->error_key = key;
  }
}

// An integer that fits int32 (flexbuffers stores up to 64 bits, signed or not).
bool ReadInt(const flexbuffers::Reference& r, int32_t* out) {
  if (r.IsInt()) {
    const int64_t v = r.AsInt64();
    if (v < INT32_MIN || v > INT32_MAX) return false;
    *out = static_cast<int32_t>(v);
    return true;
  }
  if (r.IsUInt()) {
    const uint64_t v = r.AsUInt64();
    if (v > static_cast<uint64_t>(INT32_MAX)) return false;
    *out = static_cast<int32_t>(v);
    return true;
  }
  return false;
}

template <size_t N>
bool ReadEnum(const flexbuffers::Reference& r, const EnumName (&names)[N],
              int* out) {
  if (!r.IsString()) return false;
  const flexbuffers::String s = r.AsString();
  for (size_t i = 0; i < N; ++i) {
    if (s.length() == strlen(names[i].name) &&
        memcmp(s.c_str(), names[i].name, s.length()) == 0) {
      *out = names[i].value;
      return true;
    }
  }
  return false;
}

// The keys of every block (float and int8), each required once.
enum CommonKey {
  kVersion,
  kDModel,
  kDInner,
  kDState,
  kDConv,
  kDtRank,
  kDecay,
  kDtActivation,
  kActivation,
  kNorm,
  kNormEps,
  kStateful,
  kNumCommonKeys,
};
constexpr const char* kCommonKeys[kNumCommonKeys] = {
    "version", "d_model", "d_inner", "d_state", "d_conv", "dt_rank",
    "decay", "dt_activation", "activation", "norm", "norm_eps", "stateful"};

// One common key's value; false when it has the wrong type or value.
bool ReadCommon(int k, const flexbuffers::Reference& r, MambaBlockOptions* o) {
  tm_block_config& c = o->cfg;
  int e = 0;
  int32_t v = 0;
  switch (k) {
    case kVersion:
      return ReadInt(r, &v) && v == kOptionsVersion;
    case kDModel:
      return ReadInt(r, &c.d_model);
    case kDInner:
      return ReadInt(r, &c.d_inner);
    case kDState:
      return ReadInt(r, &c.d_state);
    case kDConv:
      return ReadInt(r, &c.d_conv);
    case kDtRank:
      return ReadInt(r, &c.dt_rank);
    case kDecay:
      if (!ReadEnum(r, kDecays, &e)) return false;
      c.decay = static_cast<tm_decay>(e);
      return true;
    case kDtActivation:
      if (!ReadEnum(r, kDtActivations, &e)) return false;
      c.dt_activation = static_cast<tm_dt_activation>(e);
      return true;
    case kActivation:
      if (!ReadEnum(r, kActivations, &e)) return false;
      c.activation = static_cast<tm_activation>(e);
      return true;
    case kNorm:
      if (!ReadEnum(r, kNorms, &e)) return false;
      c.norm = static_cast<tm_norm>(e);
      return true;
    case kNormEps:
      if (!r.IsNumeric()) return false;
      o->norm_eps = r.AsFloat();
      // finite and >= 0 (NaN fails both comparisons)
      return o->norm_eps >= 0.0f && o->norm_eps <= 1.0e30f;
    case kStateful:
      if (!r.IsBool()) return false;
      o->stateful = r.AsBool();
      return true;
    default:
      return false;
  }
}

}  // namespace

void ParseMambaBlockOptions(const char* buffer, size_t length,
                            MambaBlockOptions* o) {
  memset(o, 0, sizeof(*o));
  if (buffer == nullptr || length == 0) {
    Fail(o, "missing: the operator has no custom options", "custom_options");
    return;
  }
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buffer);
  // Every offset inside the flexbuffer stays inside `length` bytes (no allocation: no tracker).
  if (!flexbuffers::VerifyBuffer(bytes, length, nullptr)) {
    Fail(o, "is not a valid flexbuffer", "custom_options");
    return;
  }
  const flexbuffers::Reference root = flexbuffers::GetRoot(bytes, length);
  if (!root.IsMap()) {
    Fail(o, "is not a flexbuffers map", "custom_options");
    return;
  }
  tm_block_q8_weights& w = o->q8;
  // Optional (an int8 block without it has int8 y: the models exported before it existed).
  w.ssm.y_bits = 8;
  bool seen_y_bits = false;
  // The int8 scalars, in the order of fused_tflite.INT8_OPTION_KEYS: all or none.
  struct {
    const char* key;
    int32_t* field;
  } const q8_fields[] = {
      {"in_zp", &w.in_zp},
      {"in_proj_x_out_zp", &w.in_proj_x.out_zp},
      {"in_proj_z_out_zp", &w.in_proj_z.out_zp},
      {"conv_out_zp", &w.conv.out_zp},
      {"x_proj_dt_out_zp", &w.x_proj_dt.out_zp},
      {"x_proj_B_out_zp", &w.x_proj_B.out_zp},
      {"x_proj_C_out_zp", &w.x_proj_C.out_zp},
      {"dt_proj_out_zp", &w.dt_proj.out_zp},
      {"ssm_x_zp", &w.ssm.x_zp},
      {"ssm_dt_zp", &w.ssm.dt_zp},
      {"ssm_B_zp", &w.ssm.B_zp},
      {"ssm_C_zp", &w.ssm.C_zp},
      {"ssm_bx_shift", &w.ssm.bx_shift},
      {"ssm_hc_mult", &w.ssm.hc_mult},
      {"ssm_hc_shift", &w.ssm.hc_shift},
      {"ssm_y_zp", &w.ssm.y_zp},
      {"gate_zp", &w.gate_zp},
      {"yg_mult", &w.yg_mult},
      {"yg_shift", &w.yg_shift},
      {"yg_zp", &w.yg_zp},
      {"out_proj_out_zp", &w.out_proj.out_zp},
      {"res_u_mult", &w.res_u_mult},
      {"res_u_shift", &w.res_u_shift},
      {"res_m_mult", &w.res_m_mult},
      {"res_m_shift", &w.res_m_shift},
      {"out_zp", &w.out_zp},
  };
  constexpr size_t kNumQ8 = sizeof(q8_fields) / sizeof(q8_fields[0]);
  bool seen_common[kNumCommonKeys] = {};
  bool seen_q8[kNumQ8] = {};
  size_t n_q8 = 0;

  // One pass over the entries as stored: no lookup relies on the keys being sorted.
  const flexbuffers::Map m = root.AsMap();
  const flexbuffers::TypedVector keys = m.Keys();
  const flexbuffers::Vector values = m.Values();
  if (keys.size() != values.size()) {
    Fail(o, "has keys and values of different counts", "custom_options");
    return;
  }
  for (size_t i = 0; i < keys.size() && o->error == nullptr; ++i) {
    const flexbuffers::Reference key_ref = keys[i];
    if (!key_ref.IsKey()) {
      Fail(o, "has a key that is not a string", "custom_options");
      return;
    }
    const char* key = key_ref.AsKey();
    if (key[0] == '\0') {
      Fail(o, "has an empty key", "custom_options");
      return;
    }
    const flexbuffers::Reference value = values[i];
    bool known = false;
    if (strcmp(key, "ssm_y_bits") == 0) {
      known = true;
      if (seen_y_bits) {
        Fail(o, "appears twice", "ssm_y_bits");
      } else if (!ReadInt(value, &w.ssm.y_bits)) {
        Fail(o, "is not an int32 integer", "ssm_y_bits");
      }
      seen_y_bits = true;
    }
    for (int k = 0; k < kNumCommonKeys && !known; ++k) {
      if (strcmp(key, kCommonKeys[k]) != 0) continue;
      known = true;
      if (seen_common[k]) {
        Fail(o, "appears twice", kCommonKeys[k]);
      } else if (!ReadCommon(k, value, o)) {
        Fail(o, k == kVersion ? "is not version 1 (re-export the model)"
                              : "has the wrong type or value",
             kCommonKeys[k]);
      }
      seen_common[k] = true;
    }
    for (size_t k = 0; k < kNumQ8 && !known; ++k) {
      if (strcmp(key, q8_fields[k].key) != 0) continue;
      known = true;
      if (seen_q8[k]) {
        Fail(o, "appears twice", q8_fields[k].key);
      } else if (!ReadInt(value, q8_fields[k].field)) {
        Fail(o, "is not an int32 integer", q8_fields[k].key);
      }
      seen_q8[k] = true;
      ++n_q8;
    }
    if (!known) Fail(o, "is not a MAMBA_BLOCK option", key);
  }
  for (int k = 0; k < kNumCommonKeys; ++k) {
    if (!seen_common[k]) Fail(o, "is missing", kCommonKeys[k]);
  }
  // A float block has no int8 scalars; an int8 block has all of them.
  o->has_q8 = n_q8 == kNumQ8;
  for (size_t k = 0; k < kNumQ8 && !o->has_q8; ++k) {
    if (!seen_q8[k]) {
      o->missing_q8_key = q8_fields[k].key;
      if (n_q8 > 0) {
        Fail(o, "is missing (the other int8 options are there)",
             q8_fields[k].key);
      }
      break;
    }
  }
}

}  // namespace tflm_mamba
