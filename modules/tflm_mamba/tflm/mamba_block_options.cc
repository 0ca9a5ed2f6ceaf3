// Parsing of MAMBA_BLOCK's custom options (mamba_block_options.h).
#include "mamba_block_options.h"

#include <string.h>

#include "flatbuffers/flexbuffers.h"

namespace tflm_mamba {
namespace {

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

bool ReadInt(const flexbuffers::Map& m, const char* key, int32_t* out) {
  const flexbuffers::Reference r = m[key];
  if (!(r.IsInt() || r.IsUInt())) return false;
  *out = r.AsInt32();
  return true;
}

void RequireInt(const flexbuffers::Map& m, const char* key, int32_t* out,
                MambaBlockOptions* o) {
  if (!ReadInt(m, key, out)) Fail(o, "missing or not an integer", key);
}

void RequirePositive(const flexbuffers::Map& m, const char* key, int32_t* out,
                     MambaBlockOptions* o) {
  RequireInt(m, key, out, o);
  if (*out < 1) Fail(o, "must be >= 1", key);
}

template <typename E, size_t N>
void RequireEnum(const flexbuffers::Map& m, const char* key,
                 const EnumName (&names)[N], E* out, MambaBlockOptions* o) {
  const flexbuffers::Reference r = m[key];
  if (!r.IsString()) {
    Fail(o, "missing or not a string", key);
    return;
  }
  const char* s = r.AsString().c_str();
  for (size_t i = 0; i < N; ++i) {
    if (strcmp(s, names[i].name) == 0) {
      *out = static_cast<E>(names[i].value);
      return;
    }
  }
  Fail(o, "has an unknown value", key);
}

// The int8 scalars; the first missing key is remembered for Prepare's message.
void ReadQ8(const flexbuffers::Map& m, MambaBlockOptions* o) {
  tm_block_q8_weights& w = o->q8;
  struct {
    const char* key;
    int32_t* field;
  } const fields[] = {
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
  o->has_q8 = true;
  for (const auto& f : fields) {
    if (!ReadInt(m, f.key, f.field)) {
      o->has_q8 = false;
      o->missing_q8_key = f.key;
      return;
    }
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
  const flexbuffers::Reference root =
      flexbuffers::GetRoot(reinterpret_cast<const uint8_t*>(buffer), length);
  if (!root.IsMap()) {
    Fail(o, "is not a flexbuffers map", "custom_options");
    return;
  }
  const flexbuffers::Map m = root.AsMap();
  tm_block_config& c = o->cfg;
  RequirePositive(m, "d_model", &c.d_model, o);
  RequirePositive(m, "d_inner", &c.d_inner, o);
  RequirePositive(m, "d_state", &c.d_state, o);
  RequirePositive(m, "d_conv", &c.d_conv, o);
  RequirePositive(m, "dt_rank", &c.dt_rank, o);
  RequireEnum(m, "decay", kDecays, &c.decay, o);
  RequireEnum(m, "dt_activation", kDtActivations, &c.dt_activation, o);
  RequireEnum(m, "activation", kActivations, &c.activation, o);
  RequireEnum(m, "norm", kNorms, &c.norm, o);
  const flexbuffers::Reference eps = m["norm_eps"];
  o->norm_eps = eps.IsNumeric() ? eps.AsFloat() : 1e-5f;
  const flexbuffers::Reference stateful = m["stateful"];
  o->stateful = stateful.IsBool() ? stateful.AsBool() : false;
  ReadQ8(m, o);
}

}  // namespace tflm_mamba
