/*
 * fuzz_config.c - libFuzzer harness for the config parser: arbitrary bytes
 * through libyaml into the node tree, then through the agent and paths
 * schemas. Nothing may crash, leak or read out of bounds; errors are fine.
 * It includes config.c, as every harness includes the module it fuzzes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/config.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_node *root = NULL;
    ms_error err = {0};
    if (ms_node_parse_string("fuzz", (const char *)data, size, &root, &err) != MS_OK) return 0;
    ms_agent_config agent;
    ms_paths_config paths;
    memset(&agent, 0, sizeof agent);
    memset(&paths, 0, sizeof paths);
    ms_schema_apply(ms_config_agent_fields, ms_node_get(root, "agent"), &agent, 0, "fuzz", &err);
    ms_schema_free(ms_config_agent_fields, &agent);
    ms_schema_apply(ms_config_paths_fields, ms_node_get(root, "paths"), &paths, 0, "fuzz", &err);
    ms_schema_free(ms_config_paths_fields, &paths);
    ms_node_equal(root, root);
    ms_node_free(root);
    return 0;
}
