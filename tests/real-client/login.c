/* login: one whole PCoIP client login through HP's own broker library (HP Anyware PCoIP Client
   24.07.3, broker_client.dll, PCOIP_BROKER_API 9), printing what the library parsed at each step.

   The library is HP's and is never committed: see README.md beside this file for where it comes
   from. This program only calls its exported API, with the signatures recorded in
   ../shared/tools/real-client/probe.c and probe2.c.

   usage: login.exe HOST:PORT USER DOMAIN PASSWORD [ANSWERS] [DESKTOP]
     ANSWERS  comma-separated answers for successive dialog steps (each answers every field of
              its dialog; the last one is reused), e.g. "000000,123456" for a wrong one-time
              code and then a right one. Default "123456".
     DESKTOP  the name of the desktop to connect to (default: the first listed).

   Prints lines starting "LOGIN:" and exits 0 only when the library handed out a connection
   with a non-empty connect tag ("LOGIN: CONNECTED"). */
#include <windows.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>

typedef void *H;
static HMODULE M;
#define F(name) ((void *)GetProcAddress(M, name))
typedef int (*f_create)(unsigned, H *);
typedef int (*f_h_s3)(H, const char *, const char *, const char *);
typedef int (*f_h_s)(H, const char *);
typedef int (*f_h_s_p)(H, const char *, void *);
typedef int (*f_h_i)(H, int);
typedef int (*f_h_pi)(H, int *);
typedef int (*f_h_buf)(H, char *, unsigned *);
typedef int (*f_h_idx_buf)(H, unsigned, char *, unsigned *);
typedef int (*f_field)(H, unsigned, int *, char *, unsigned *, char *, unsigned *, char *, unsigned *,
                       unsigned char *, unsigned char *, int *);
typedef int (*f_button)(H, unsigned, char *, unsigned *, char *, unsigned *, unsigned char *);
typedef int (*f_h_pp)(H, H *);
typedef int (*f_conn)(H, const char *, void *, H *);
typedef int (*f_prop)(H, int, char *, unsigned *);
typedef void (*f_setlog)(void *);

/* The library's auth methods, as get_auth_method reports them. */
enum { METHOD_NONE = 0, METHOD_PASSWORD = 1, METHOD_DISCLAIMER = 3, METHOD_DIALOG = 6 };

static void logcb(void *a, int b, int c, const char *fmt, va_list ap) {
  (void)a; (void)b; (void)c;
  printf("LIB: ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
}
static void logidcb(const char *id) { (void)id; }

static void error_message(H h, const char *what, int rc) {
  char e[4096];
  unsigned n = sizeof e;
  e[0] = 0;
  ((f_h_buf)F("pcoip_broker_get_broker_error_message"))(h, e, &n);
  printf("LOGIN: %s rc=%d error='%s'\n", what, rc, e);
  fflush(stdout);
}

static int method(H h) {
  int m = -1;
  int rc = ((f_h_pi)F("pcoip_broker_get_auth_method"))(h, &m);
  if (rc) error_message(h, "get_auth_method", rc);
  printf("LOGIN: auth method %d\n", m);
  return rc ? -1 : m;
}

static void dump_dialog(H h) {
  char b1[4096], b2[4096], b3[4096];
  unsigned n = sizeof b1;
  ((f_h_buf)F("pcoip_broker_get_auth_dialog_prompt_text"))(h, b1, &n);
  n = sizeof b2;
  b2[0] = 0;
  ((f_h_buf)F("pcoip_broker_get_auth_dialog_error_text"))(h, b2, &n);
  printf("LOGIN: dialog prompt='%s' error-text='%s'\n", b1, b2);
  int nf = 0, nb = 0;
  ((f_h_pi)F("pcoip_broker_get_auth_dialog_get_num_fields"))(h, &nf);
  for (int i = 0; i < nf && i < 10; i++) {
    int type = -1, tt = -1;
    unsigned char hidden = 9, nolog = 9;
    unsigned l1 = sizeof b1, l2 = sizeof b2, l3 = sizeof b3;
    b1[0] = b2[0] = b3[0] = 0;
    int rc = ((f_field)F("pcoip_broker_get_auth_dialog_field"))(h, i, &type, b1, &l1, b2, &l2, b3, &l3, &hidden,
                                                                &nolog, &tt);
    printf("LOGIN: dialog field[%d] rc=%d type=%d id='%s' label='%s' text='%s' hidden=%d do-not-log=%d "
           "text-type=%d\n", i, rc, type, b1, b2, b3, hidden, nolog, tt);
  }
  ((f_h_pi)F("pcoip_broker_get_auth_dialog_get_num_buttons"))(h, &nb);
  for (int i = 0; i < nb && i < 10; i++) {
    unsigned char d = 9;
    unsigned l1 = sizeof b1, l2 = sizeof b2;
    b1[0] = b2[0] = 0;
    int rc = ((f_button)F("pcoip_broker_get_auth_dialog_button"))(h, i, b1, &l1, b2, &l2, &d);
    printf("LOGIN: dialog button[%d] rc=%d id='%s' label='%s' is-default=%d\n", i, rc, b1, b2, d);
  }
  fflush(stdout);
}

/* The ANSWERS list: answer number `step`, or the last one. */
static void answer(const char *answers, int step, char *out, size_t size) {
  const char *start = answers;
  for (int i = 0; i < step; i++) {
    const char *comma = strchr(start, ',');
    if (!comma) break;
    start = comma + 1;
  }
  size_t len = strcspn(start, ",");
  if (len >= size) len = size - 1;
  memcpy(out, start, len);
  out[len] = 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    printf("usage: login.exe HOST:PORT USER DOMAIN PASSWORD [ANSWERS] [DESKTOP]\n");
    return 2;
  }
  const char *answers = argc > 5 ? argv[5] : "123456";
  const char *wanted = argc > 6 ? argv[6] : NULL;
  M = LoadLibraryA("broker_client.dll");
  if (!M) {
    printf("LOGIN: cannot load broker_client.dll (run from the folder that holds it)\n");
    return 1;
  }
  ((f_setlog)F("pcoip_broker_set_session_log_id_function"))((void *)logidcb);
  ((f_setlog)F("pcoip_broker_set_log_function"))((void *)logcb);
  H h = 0;
  int rc = ((f_create)F("pcoip_broker_create"))(0x50434f49, &h);
  if (rc) {
    printf("LOGIN: create rc=%d\n", rc);
    return 1;
  }
  ((f_h_s3)F("pcoip_broker_set_client_info"))(h, "Interstate login probe", "1.0", "Wine");
  ((f_h_s)F("pcoip_broker_set_timezone"))(h, "Pacific Standard Time");
  ((f_h_s_p)F("pcoip_broker_set_broker_address"))(h, argv[1], 0);
  ((f_h_i)F("pcoip_broker_fail_if_unverified"))(h, 0);

  int m = method(h);
  int domains = 0;
  ((f_h_pi)F("pcoip_broker_get_num_auth_domains"))(h, &domains);
  printf("LOGIN: %d domains\n", domains);
  int dialogs = 0;
  for (int step = 0; step < 12 && m != METHOD_NONE; step++) {
    if (m == METHOD_PASSWORD) {
      if (step > 0) {
        printf("LOGIN: asked for the password again\n");
        return 1;
      }
      rc = ((f_h_s3)F("pcoip_broker_send_password"))(h, argv[2], argv[3], argv[4]);
      printf("LOGIN: send_password rc=%d\n", rc);
    } else if (m == METHOD_DIALOG) {
      dump_dialog(h);
      struct { const char *id; const char *text; } values[4];
      char ids[4][256], text[256];
      answer(answers, dialogs++, text, sizeof text);
      int nf = 0;
      ((f_h_pi)F("pcoip_broker_get_auth_dialog_get_num_fields"))(h, &nf);
      if (nf > 4) nf = 4;
      for (int i = 0; i < nf; i++) {
        int type, tt;
        unsigned char x, y;
        unsigned l1 = sizeof ids[i], l2 = 0, l3 = 0;
        ids[i][0] = 0;
        ((f_field)F("pcoip_broker_get_auth_dialog_field"))(h, i, &type, ids[i], &l1, NULL, &l2, NULL, &l3, &x, &y, &tt);
        values[i].id = ids[i];
        values[i].text = text;
      }
      char button[256] = "ok";
      unsigned bl = sizeof button, l2 = 0;
      unsigned char d;
      int nb = 0;
      ((f_h_pi)F("pcoip_broker_get_auth_dialog_get_num_buttons"))(h, &nb);
      if (nb) ((f_button)F("pcoip_broker_get_auth_dialog_button"))(h, 0, button, &bl, NULL, &l2, &d);
      rc = ((int (*)(H, const char *, void *, unsigned))F("pcoip_broker_send_auth_dialog"))(h, button, values, nf);
      printf("LOGIN: send_auth_dialog(button='%s', %d fields, answer %d) rc=%d\n", button, nf, dialogs, rc);
    } else if (m == METHOD_DISCLAIMER) {
      char text[4096];
      unsigned n = sizeof text;
      text[0] = 0;
      ((f_h_buf)F("pcoip_broker_get_disclaimer_text"))(h, text, &n);
      printf("LOGIN: disclaimer '%s'\n", text);
      rc = ((int (*)(H, int))F("pcoip_broker_send_accept_disclaimer"))(h, 1);
      printf("LOGIN: send_accept_disclaimer rc=%d\n", rc);
    } else {
      printf("LOGIN: unexpected auth method %d\n", m);
      return 1;
    }
    if (rc) {
      error_message(h, "authentication step", rc);
      return 1;
    }
    m = method(h);
  }
  if (m != METHOD_NONE) {
    printf("LOGIN: not logged in (auth method %d)\n", m);
    return 1;
  }
  printf("LOGIN: AUTHENTICATED\n");

  H list = 0;
  rc = ((f_h_pp)F("pcoip_broker_request_desktop_list"))(h, &list);
  if (rc) {
    error_message(h, "request_desktop_list", rc);
    return 1;
  }
  int nd = 0;
  ((f_h_pi)F("pcoip_broker_get_num_desktops"))(list, &nd);
  char chosen[4096] = "";
  for (int i = 0; i < nd; i++) {
    char name[4096], id[4096], state[4096];
    unsigned n = sizeof name;
    name[0] = id[0] = state[0] = 0;
    ((f_h_idx_buf)F("pcoip_broker_get_desktop_name"))(list, i, name, &n);
    n = sizeof id;
    ((f_h_idx_buf)F("pcoip_broker_get_desktop_id"))(list, i, id, &n);
    n = sizeof state;
    ((f_h_idx_buf)F("pcoip_broker_get_desktop_state"))(list, i, state, &n);
    printf("LOGIN: desktop[%d] name='%s' id='%s' state='%s'\n", i, name, id, state);
    if ((!wanted && i == 0) || (wanted && !_stricmp(name, wanted))) strcpy(chosen, id);
  }
  if (!chosen[0]) {
    printf("LOGIN: no desktop to connect to\n");
    return 1;
  }
  fflush(stdout);

  H conn = 0;
  rc = ((f_conn)F("pcoip_broker_connect_to_desktop"))(h, chosen, NULL, &conn);
  if (rc || !conn) {
    error_message(h, "connect_to_desktop", rc);
    return 1;
  }
  /* Connection properties 0..11, as probe2.c reads them (one of them is the connect tag). */
  for (int p = 0; p < 12; p++) {
    char value[4096];
    unsigned n = sizeof value;
    value[0] = 0;
    int r = ((f_prop)F("pcoip_broker_get_desktop_connection_property"))(conn, p, value, &n);
    printf("LOGIN: connection property %d rc=%d '%s'\n", p, r, value);
  }
  printf("LOGIN: CONNECTED to '%s'\n", chosen);
  fflush(stdout);
  return 0;
}
