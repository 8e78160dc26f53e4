# Writes one ctest per doctest test case of TEST_EXECUTABLE into CTEST_FILE (run after each
# build). Each test selects its case by position (--first=i --last=i), not by name: doctest's
# name filters split at commas and would silently run nothing for a name that contains one.
# Arguments: TEST_EXECUTABLE, TEST_PREFIX, CTEST_FILE, TIMEOUT; optional TEST_LAUNCHER (a command
# put before the executable, its words separated by '|', e.g. "mpiexec|-np|2"),
# TEST_ENVIRONMENT (NAME=VALUE entries separated by '|') and EXTRA_PROPERTIES (more
# "NAME value" pairs for set_tests_properties, e.g. "SKIP_RETURN_CODE 77").
execute_process(COMMAND "${TEST_EXECUTABLE}" --list-test-cases --no-version
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "listing the test cases of ${TEST_EXECUTABLE} failed (${rc}):\n${out}")
endif()
# Characters that CMake's list and quoting rules treat specially are replaced in the names only.
string(REPLACE "[" "(" out "${out}")
string(REPLACE "]" ")" out "${out}")
string(REPLACE "\"" "'" out "${out}")
string(REPLACE "$" "S" out "${out}")
string(REPLACE ";" "," out "${out}")
string(REPLACE "\n" ";" lines "${out}")
string(REPLACE "|" ";" launcher "${TEST_LAUNCHER}")
set(launch "")
foreach(word IN LISTS launcher)
  string(APPEND launch "\"${word}\" ")
endforeach()
set(properties "TIMEOUT ${TIMEOUT} ${EXTRA_PROPERTIES}")
if(TEST_ENVIRONMENT)
  string(REPLACE "|" ";" environment "${TEST_ENVIRONMENT}")
  string(APPEND properties " ENVIRONMENT \"${environment}\"")
endif()
set(script "")
set(index 0)
foreach(line IN LISTS lines)
  if(line STREQUAL "" OR line MATCHES "^====" OR line MATCHES "^\\(doctest\\)")
    continue()
  endif()
  math(EXPR index "${index} + 1")
  set(name "${TEST_PREFIX} #${index}: ${line}")
  string(APPEND script "add_test(\"${name}\" ${launch}\"${TEST_EXECUTABLE}\" --first=${index} --last=${index} --no-version)\n"
                       "set_tests_properties(\"${name}\" PROPERTIES ${properties})\n")
endforeach()
if(index EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} has no test cases")
endif()
file(WRITE "${CTEST_FILE}" "${script}")
