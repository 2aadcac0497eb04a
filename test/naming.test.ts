// Pure naming tests: snakeCase (dlt's `normalize_identifier`) and normalizeKey (dlt's `normalize_path`
// for data keys, with `_empty` for an empty or whitespace-only key). Expected values are dlt 1.x's,
// from the research notes' worked examples (§1.5) and dlt's own test vectors
// (tests/common/normalizers/test_naming_snake_case.py); they were re-checked against a
// re-implementation of dlt's algorithm, not against flight.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeKey, snakeCase } from '../flight.ts';

/** [input, normalize_identifier (snakeCase), normalize_path (normalizeKey)] */
const CASES: [input: string, identifier: string, path: string][] = [
  // camelCase / PascalCase / acronyms
  ['camelCase', 'camel_case', 'camel_case'],
  ['PascalCase', 'pascal_case', 'pascal_case'],
  ['HTTPServer', 'http_server', 'http_server'],
  ['XMLHttpRequest', 'xml_http_request', 'xml_http_request'],
  ['userID', 'user_id', 'user_id'],
  ['iPhone', 'i_phone', 'i_phone'],
  ['GitHub Issues', 'git_hub_issues', 'git_hub_issues'],
  ['ABCdef', 'ab_cdef', 'ab_cdef'],
  ['version2Beta', 'version2_beta', 'version2_beta'],
  ['URL2Path', 'url2_path', 'url2_path'],
  ['123BaNaNa', '_123_ba_na_na', '_123_ba_na_na'],
  ['MyTable', 'my_table', 'my_table'],
  ['ID', 'id', 'id'],
  // spaces and punctuation
  ['stars count', 'stars_count', 'stars_count'],
  ['  padded  ', 'padded', 'padded'],
  ['a-b', 'a_b', 'a_b'],
  ['a;b--c', 'a_b_c', 'a_b_c'],
  ['dot.ted.name', 'dot_ted_name', 'dot_ted_name'],
  ['event-.!:*<>value', 'event_x_value', 'event_x_value'],
  ['tab\tkey', 'tab_key', 'tab_key'],
  // leading digits
  ['1st', '_1st', '_1st'],
  ['2024_sales', '_2024_sales', '_2024_sales'],
  ['٣abc', '_٣abc', '_٣abc'],
  ['３abc', '_３abc', '_３abc'],
  ['1__a', '_1_a', '_1__a'],
  // the reduced alphabet: + -> x, - -> _, * -> x, @ -> a, | -> l
  ['a+b', 'axb', 'axb'],
  ['a*b', 'axb', 'axb'],
  ['user@host', 'userahost', 'userahost'],
  ['a|b', 'alb', 'alb'],
  ['+-!$*@#=|:', 'x_xa_lx', 'x_xa_lx'],
  ['+1', 'x1', 'x1'],
  ['-1', '_1', '_1'],
  // trailing underscores become x; runs of _ collapse; __ is a path separator for keys
  ['trailing_', 'trailingx', 'trailingx'],
  ['trailing__', 'trailingxx', 'trailing'],
  ['BANANA____', 'bananaxxxx', 'banana'],
  ['__private', '_private', 'private'],
  ['_private', '_private', '_private'],
  ['_', 'x', 'x'],
  ['x__y', 'x_y', 'x__y'],
  ['x___y', 'x_y', 'x___y'],
  ['a____b', 'a_b', 'a__b'],
  ['a__b__c', 'a_b_c', 'a__b__c'],
  ['__a__b__', '_a_bxx', 'a__b'],
  ['Parent__ChildKey', 'parent_child_key', 'parent__child_key'],
  ['user__first_name', 'user_first_name', 'user__first_name'],
  ['Small___Love____Potion_____x', 'small_love_potion_x', 'small___love__potion___x'],
  // non-ASCII letters and symbols become _
  ['Ünïcode', '_n_code', '_n_code'],
  ['créé_le', 'cr_le', 'cr_le'],
  ['emoji 🦆', 'emojix', 'emojix'],
  ['🦆', 'x', 'x'],
  ['日本語', 'x', 'x'],
  ['price €', 'pricex', 'pricex'],
  // no reserved-word handling
  ['select', 'select', 'select'],
  ['value', 'value', 'value'],
  // SQL metacharacters can never survive into a name
  ['a"b', 'a_b', 'a_b'],
  ["a'b", 'a_b', 'a_b'],
  ['a\\b', 'a_b', 'a_b'],
  ['back`tick', 'back_tick', 'back_tick'],
  ['semi;colon', 'semi_colon', 'semi_colon'],
  ['dash--dash', 'dash_dash', 'dash_dash'],
  ['"quoted"', '_quotedx', '_quotedx'],
  ['/* c */ col', '_x_c_x_col', '_x_c_x_col'],
  ['"; DROP TABLE x; --', '_drop_table_xxxx', '_drop_table_xxxx'],
  ["x'); DROP TABLE x; --", 'x_drop_table_xxxx', 'x_drop_table_xxxx'],
  ['a\nb', 'a_b', 'a_b'],
];

describe('snakeCase follows dlt normalize_identifier', () => {
  for (const [input, expected] of CASES) {
    test(`${JSON.stringify(input)} -> ${expected}`, () => {
      assert.equal(snakeCase(input), expected);
    });
  }
});

describe('normalizeKey follows dlt normalize_path (keys are paths)', () => {
  for (const [input, , expected] of CASES) {
    test(`${JSON.stringify(input)} -> ${expected}`, () => {
      assert.equal(normalizeKey(input), expected);
    });
  }

  for (const key of ['', ' ', '   ', '\t\n']) {
    test(`empty / whitespace-only key ${JSON.stringify(key)} -> _empty`, () => {
      assert.equal(normalizeKey(key), '_empty');
    });
  }

  test('a key made only of separators ("__", "____") still gets a usable, non-empty column name', () => {
    // dlt's normalize_path would give "" here (a column with an empty name); the port must not.
    for (const key of ['__', '____']) {
      const name = normalizeKey(key);
      assert.match(name, /^[a-z_][a-z0-9_]*$/, `normalizeKey(${JSON.stringify(key)}) = ${JSON.stringify(name)}`);
    }
  });

  test('repeated calls give the same answer (the memo does not change results)', () => {
    for (const [input, , expected] of CASES) {
      assert.equal(normalizeKey(input), expected);
      assert.equal(normalizeKey(input), expected);
    }
  });

  test('normalized names are idempotent: normalizing a normalized name changes nothing', () => {
    for (const [, identifier, path] of CASES) {
      assert.equal(snakeCase(identifier), identifier, `snakeCase(${JSON.stringify(identifier)})`);
      assert.equal(normalizeKey(path), path, `normalizeKey(${JSON.stringify(path)})`);
    }
  });
});
