// MicroPython binding of the `embbert` module: the model and the tokenizer of
// one artifact, built into the firmware (a user C module: micropython.mk,
// micropython.cmake). Python API:
//   info() -> dict: backend, model_sha256, tokenizer_sha256, labels, max_len,
//            vocab_size, arena_bytes, max_text_bytes, full_length, counter,
//            board, firmware (+ flash_bytes, ram_bytes on our port)
//   classify(text) -> (label, logits)      logits: array('b'), int8
//   tokenize(text) -> array('H')           [CLS] ... [SEP], cut to max_len
//   logits(ids) -> array('b')              ids: any buffer of integers (array, bytes, ...), list or tuple
//   counter() -> (infer, tokenize)         of the last call, in info()['counter'] units
// The arena and the ids are static (never on the GC heap); the hot path
// builds no list. Bad input raises TypeError or ValueError; nothing else changes.
#include <string.h>

#include "embbert_core.h"
#include "genhdr/mpversion.h"
#include "py/binary.h"
#include "py/mphal.h"
#include "py/objarray.h"
#include "py/runtime.h"

// The counter: a port of ours (port.h, e.g. boards/common/baremetal-cortex-m)
// defines EMBBERT_COUNTER_UNIT and gives port_counter(); elsewhere (esp32,
// stm32, rp2 ports) microseconds from mp_hal_ticks_us().
#ifdef EMBBERT_COUNTER_UNIT
#include "port.h"
#define EMBBERT_MP_UNIT EMBBERT_COUNTER_UNIT
typedef uint64_t embbert_count_t;
static embbert_count_t count_now(void) { return port_counter(); }
static uint64_t count_since(embbert_count_t start) {
  return (port_counter() - start) * EMBBERT_COUNTER_NUM / EMBBERT_COUNTER_DEN;
}
#else
#define EMBBERT_MP_UNIT "us"
typedef mp_uint_t embbert_count_t;
static embbert_count_t count_now(void) { return mp_hal_ticks_us(); }
static uint64_t count_since(embbert_count_t start) { return (uint32_t)(mp_hal_ticks_us() - start); }
#endif

#define EMBBERT_MAX_LABELS 64

static uint64_t g_infer_count, g_tokenize_count;  // of the last call
static int8_t g_logits[EMBBERT_MAX_LABELS];

static const embbert_core_info_t *core(void) {
  const embbert_core_info_t *info = embbert_core_info();
  if (info->n_labels > EMBBERT_MAX_LABELS) {
    mp_raise_msg_varg(&mp_type_RuntimeError, MP_ERROR_TEXT("the model has %d labels; this module takes up to %d"),
                      info->n_labels, EMBBERT_MAX_LABELS);
  }
  return info;
}

// array(typecode, items): one bytes object, copied into the array.
static mp_obj_t new_array(qstr typecode, const void *items, size_t nbytes) {
  mp_obj_t args[2] = {MP_OBJ_NEW_QSTR(typecode), mp_obj_new_bytes(items, nbytes)};
  return MP_OBJ_TYPE_GET_SLOT(&mp_type_array, make_new)(&mp_type_array, 2, 0, args);
}

static mp_obj_t new_count(uint64_t v) { return mp_obj_new_int_from_ull(v); }

static void tokenize_text(mp_obj_t text_in, const uint16_t **ids, uint16_t *n) {
  if (!mp_obj_is_str(text_in)) {
    mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("text must be str, not %s"),
                      mp_obj_get_type_str(text_in));
  }
  size_t len;
  const char *text = mp_obj_str_get_data(text_in, &len);
  const embbert_core_info_t *info = core();
  const embbert_count_t start = count_now();
  embbert_core_status_t s = embbert_core_tokenize(text, len, ids, n);
  g_tokenize_count = count_since(start);
  g_infer_count = 0;
  if (s == EMBBERT_CORE_TOO_LONG) {
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("text is %d bytes; at most %d"), (int)len,
                      (int)info->max_text_bytes);
  }
  if (s == EMBBERT_CORE_BAD_UTF8) mp_raise_ValueError(MP_ERROR_TEXT("text is not valid UTF-8"));
  if (s != EMBBERT_CORE_OK) mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("the model's max_len is below 2"));
}

static void infer(const uint16_t *ids, uint16_t n) {
  const embbert_count_t start = count_now();
  embbert_core_status_t s = embbert_core_infer(ids, n, g_logits);
  g_infer_count = count_since(start);
  if (s == EMBBERT_CORE_NO_MODEL) mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("this build has no model"));
  if (s == EMBBERT_CORE_BAD_IDS) mp_raise_ValueError(MP_ERROR_TEXT("the model cannot take these ids"));
  if (s != EMBBERT_CORE_OK) mp_raise_msg_varg(&mp_type_RuntimeError, MP_ERROR_TEXT("%s"), embbert_core_error());
}

static mp_obj_t logits_array(void) { return new_array(MP_QSTR_b, g_logits, core()->n_labels); }

static mp_obj_t embbert_info(void) {
  const embbert_core_info_t *info = core();
  mp_obj_t labels = mp_obj_new_tuple(info->n_labels, NULL);
  for (size_t i = 0; i < info->n_labels; ++i) {
    ((mp_obj_tuple_t *)MP_OBJ_TO_PTR(labels))->items[i] = mp_obj_new_str(info->labels[i], strlen(info->labels[i]));
  }
  mp_obj_t d = mp_obj_new_dict(14);
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_backend), mp_obj_new_str(info->backend, strlen(info->backend)));
  const char *model = info->model_sha256;
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_model_sha256),
                    model ? mp_obj_new_str(model, strlen(model)) : mp_const_none);
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_tokenizer_sha256),
                    mp_obj_new_str(info->tokenizer_sha256, strlen(info->tokenizer_sha256)));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_labels), labels);
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_max_len), MP_OBJ_NEW_SMALL_INT(info->max_len));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_vocab_size), MP_OBJ_NEW_SMALL_INT(info->vocab_size));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_arena_bytes), mp_obj_new_int_from_uint(info->arena_bytes));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_max_text_bytes), mp_obj_new_int_from_uint(info->max_text_bytes));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_full_length), mp_obj_new_bool(info->full_length));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_counter), mp_obj_new_str(EMBBERT_MP_UNIT, strlen(EMBBERT_MP_UNIT)));
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_board),
                    mp_obj_new_str(MICROPY_HW_BOARD_NAME, strlen(MICROPY_HW_BOARD_NAME)));
  static const char kFirmware[] = "MicroPython " MICROPY_VERSION_STRING;
  mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_firmware), mp_obj_new_str(kFirmware, sizeof kFirmware - 1));
#ifdef EMBBERT_COUNTER_UNIT
  uint32_t flash = 0, ram = 0;
  if (port_memory(&flash, &ram)) {
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_flash_bytes), mp_obj_new_int_from_uint(flash));
    mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_ram_bytes), mp_obj_new_int_from_uint(ram));
  }
#endif
  return d;
}
static MP_DEFINE_CONST_FUN_OBJ_0(embbert_info_obj, embbert_info);

static mp_obj_t embbert_tokenize(mp_obj_t text_in) {
  const uint16_t *ids;
  uint16_t n;
  tokenize_text(text_in, &ids, &n);
  return new_array(MP_QSTR_H, ids, n * sizeof(uint16_t));
}
static MP_DEFINE_CONST_FUN_OBJ_1(embbert_tokenize_obj, embbert_tokenize);

static mp_obj_t embbert_classify(mp_obj_t text_in) {
  const uint16_t *ids;
  uint16_t n;
  tokenize_text(text_in, &ids, &n);
  infer(ids, n);
  const embbert_core_info_t *info = core();
  uint16_t best = 0;
  for (uint16_t i = 1; i < info->n_labels; ++i) {
    if (g_logits[i] > g_logits[best]) best = i;
  }
  mp_obj_t items[2] = {mp_obj_new_str(info->labels[best], strlen(info->labels[best])), logits_array()};
  return mp_obj_new_tuple(2, items);
}
static MP_DEFINE_CONST_FUN_OBJ_1(embbert_classify_obj, embbert_classify);

// ids: a buffer of integers (array of any integer typecode, bytes, bytearray)
// or a list/tuple of ints; copied into a static uint16 buffer, checked.
static uint16_t g_ids[512];

static mp_obj_t embbert_logits(mp_obj_t ids_in) {
  const embbert_core_info_t *info = core();
  mp_buffer_info_t buf;
  size_t n;
  mp_obj_t *items = NULL;
  size_t size = 0;
  if (mp_obj_is_str(ids_in)) {  // a str is a buffer of bytes, never of ids
    mp_raise_TypeError(MP_ERROR_TEXT("ids must be token ids, not str: embbert.logits(embbert.tokenize(text))"));
  }
  if (mp_get_buffer(ids_in, &buf, MP_BUFFER_READ)) {
    if (!strchr("bBhHiIlLqQ", buf.typecode)) {
      mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("ids must be integers, not typecode '%c'"), buf.typecode);
    }
    size = mp_binary_get_size('<', buf.typecode, NULL);
    n = buf.len / size;
  } else if (mp_obj_is_type(ids_in, &mp_type_list) || mp_obj_is_type(ids_in, &mp_type_tuple)) {
    mp_obj_get_array(ids_in, &n, &items);
  } else {
    mp_raise_msg_varg(&mp_type_TypeError,
                      MP_ERROR_TEXT("ids must be a buffer of integers (array('H'), bytes) or a list, not %s"),
                      mp_obj_get_type_str(ids_in));
  }
  if (n < 2 || n > info->max_len) {
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%d ids; the model takes 2..%d ([CLS] ... [SEP])"), (int)n,
                      (int)info->max_len);
  }
  for (size_t i = 0; i < n; ++i) {
    const long long id = items ? mp_obj_get_int(items[i])
                               : mp_binary_get_int(size, strchr("bhilq", buf.typecode) != NULL, false,
                                                   (const byte *)buf.buf + i * size);
    if (id < 0 || id >= info->vocab_size) {
      mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("id %d at index %d is outside the vocabulary (0..%d)"),
                        (int)id, (int)i, info->vocab_size - 1);
    }
    g_ids[i] = (uint16_t)id;
  }
  g_tokenize_count = 0;
  infer(g_ids, (uint16_t)n);
  return logits_array();
}
static MP_DEFINE_CONST_FUN_OBJ_1(embbert_logits_obj, embbert_logits);

static mp_obj_t embbert_counter(void) {
  mp_obj_t items[2] = {new_count(g_infer_count), new_count(g_tokenize_count)};
  return mp_obj_new_tuple(2, items);
}
static MP_DEFINE_CONST_FUN_OBJ_0(embbert_counter_obj, embbert_counter);

static const mp_rom_map_elem_t embbert_module_globals_table[] = {
    {MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_embbert)},
    {MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&embbert_info_obj)},
    {MP_ROM_QSTR(MP_QSTR_classify), MP_ROM_PTR(&embbert_classify_obj)},
    {MP_ROM_QSTR(MP_QSTR_tokenize), MP_ROM_PTR(&embbert_tokenize_obj)},
    {MP_ROM_QSTR(MP_QSTR_logits), MP_ROM_PTR(&embbert_logits_obj)},
    {MP_ROM_QSTR(MP_QSTR_counter), MP_ROM_PTR(&embbert_counter_obj)},
};
static MP_DEFINE_CONST_DICT(embbert_module_globals, embbert_module_globals_table);

const mp_obj_module_t embbert_user_cmodule = {
    .base = {&mp_type_module},
    .globals = (mp_obj_dict_t *)&embbert_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_embbert, embbert_user_cmodule);
