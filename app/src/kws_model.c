/*
 * The image's model: its .tflite (app/model/, chosen in app/CMakeLists.txt) as a C array, made at
 * build time by generate_inc_file_for_target (kws_model.inc). kws_model.h, generated from the same
 * file by tools/gen_firmware.py, states its length: a model replaced without regenerating the
 * headers stops the build here.
 */
#include <zephyr/toolchain.h>

#include "kws_model.h"

__aligned(16) const unsigned char kws_model[] = {
#include "kws_model.inc"
};
const size_t kws_model_len = sizeof(kws_model);

BUILD_ASSERT(sizeof(kws_model) == KWS_MODEL_LEN,
	     "app/model/*.tflite differs from src/generated/: run make firmware-headers");
