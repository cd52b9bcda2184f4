/* fuzz_config_json.c: a Hugging Face config.json (cJSON) into the text and the vision configs. */
#include "fuzz_entry.h"

#include "gemma3_config.h"

#include <stdlib.h>
#include <string.h>

int us_fuzz_config_json(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    if (!json) return US_ERR_NOMEM;
    memcpy(json, data, size);
    json[size] = '\0';
    us_gemma3_config c;
    us_siglip_config vc;
    us_error err;
    int present = 0;
    us_status s = us_gemma3_config_parse(json, "config.json", &c, &err);
    us_status v = us_gemma3_vision_config_parse(json, "config.json", &present, &vc, &err);
    free(json);
    return s ? s : v;
}
