/** The brokers the sidecar knows and their two environments: words every room uses, so they live at the bottom. */
export type Provider = 'kis' | 'kiwoom';
export type Env = 'real' | 'mock';
